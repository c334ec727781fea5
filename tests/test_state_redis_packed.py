"""A network crawl's first page queued as its user and level (NetworkSpider.pack_request), on a real Redis:
rebuilt equal on pop, queued once per job by its claim with no fingerprint kept; a job whose claims an older
tweetform made goes on with fingerprints."""
from __future__ import annotations

import redis
from crawling import unit_crawler

from tweetform.job import JobArgs
from tweetform.meta import META_CTX
from tweetform.spiders.network import FriendsSpider
from tweetform.state.redis import compact, keys
from tweetform.state.redis.dupefilter import JobDupeFilter
from tweetform.state.redis.queue import InFlightQueue, split_member

Q = keys.queue("friends", "/2/users/:id/following")


def worker(redis_url: str) -> tuple[FriendsSpider, InFlightQueue]:
    crawler = unit_crawler(FriendsSpider, {"REDIS_URL": redis_url, "TWEETFORM_API_BASE": "http://api.test",
                                           "TWEETFORM_BLUESKY_APPVIEW": "http://appview.test"})
    spider = FriendsSpider.from_crawler(crawler)
    queue = InFlightQueue(redis.Redis.from_url(redis_url), spider, keys.queue("friends", ""))
    queue.bind(JobDupeFilter.from_spider(spider), None, None)
    return spider, queue


def job(name: str) -> JobArgs:
    return JobArgs(spider="friends", job=name, api="2", bucket="friend_ids", user_ids=[1], depth=3)


def queued(r: redis.Redis) -> list[str]:
    return [p for m in r.zrange(Q, 0, -1) for p in m.decode().split("\t", 2)[2].split("\n")]


def test_a_first_page_is_queued_as_its_user_and_level_once_per_job_and_rebuilt_equal(redis_url: str):
    r = redis.Redis.from_url(redis_url)
    spider, queue = worker(redis_url)
    j = job("packed")
    spider.store.save(j)
    users = [10**12 + i for i in range(300)]
    assert spider.store.claim_users(j, users, 2, "https://api.test/2/users/1/following") == users
    pages = [spider.first_page(j, u, 2) for u in users]
    pages[5].meta["depth"] = 2  # Scrapy's DepthMiddleware's, kept
    assert queue.push_many([queue.prepare(p) for p in pages]) == [True] * 300
    assert queued(r) == [f"~{u},2" for u in users[:5]] + [f"~{users[5]},2,2"] + [f"~{u},2" for u in users[6:]]
    assert compact.members(r, keys.dupefilter("friends", "packed")) == 0  # no fingerprint: the claim says it
    again = spider.first_page(j, users[7], 2)
    assert queue.push_many([queue.prepare(again)]) == [False]  # the same page: refused
    assert spider.store.claim_users(j, users[:3], 2, "https://api.test/2/users/1/following") == []  # queued: not again
    member = r.zrange(Q, 0, 0)[0].decode()
    job_id, qid, payloads = member.split("\t", 2)
    for n, payload in enumerate(payloads.split("\n")[:6]):
        request, original = queue.decode(job_id, payload), pages[n]
        assert (request.url, request.priority, request.meta, request.callback, request.errback) == \
            (original.url, original.priority, original.meta, original.callback, original.errback)
    assert split_member(f"{job_id}\t{qid}\t{payloads.split(chr(10))[0]}") == (job_id, qid, f"~{users[0]},2")


def test_other_requests_stay_json_and_keep_their_fingerprint(redis_url: str):
    r = redis.Redis.from_url(redis_url)
    spider, queue = worker(redis_url)
    j = job("json")
    spider.store.save(j)
    spider.store.claim_users(j, [77], 2, "seed")
    nxt = spider.api_request(j, "/2/users/:id/following", {"max_results": 1000, "pagination_token": "T"}, key="77",
                             path_id=77, depth=2, source=77, extra={"page_no": 1}, priority=-2)
    retry = spider.first_page(j, 77, 2).replace(dont_filter=True)
    assert queue.push_many([queue.prepare(nxt), queue.prepare(retry)]) == [True, True]
    assert [p.startswith("{") for p in queued(r)] == [True, True]
    assert compact.members(r, keys.dupefilter("friends", "json")) == 1  # the next page's; the retry is not filtered
    assert queue.decode("json", queued(r)[0]).meta[META_CTX]["params"]["pagination_token"] == "T"


def test_a_job_whose_claims_an_older_tweetform_made_goes_on_with_fingerprints(redis_url: str):
    """Its users' first pages were queued with fingerprints, their claims' tags never negated: deduplicating
    by claim there would queue a re-fetched page's users again."""
    r = redis.Redis.from_url(redis_url)
    spider, queue = worker(redis_url)
    j = job("older")
    spider.store.save(j)
    spider.store.claim_users(j, [5, 6], 2, "page")
    r.hdel(keys.expanded("older"), "marks")  # as an older tweetform left its layout
    pages = [spider.first_page(j, u, 2) for u in (5, 6)]
    assert queue.push_many([queue.prepare(p) for p in pages]) == [True, True]
    assert queued(r) == ["~5,2", "~6,2"]  # still packed
    assert compact.members(r, keys.dupefilter("friends", "older")) == 2  # deduplicated by fingerprint
    assert spider.store.claim_users(j, [5], 2, "page") == [5]  # its claimer's re-claim (tags untouched) ...
    assert queue.push_many([queue.prepare(spider.first_page(j, 5, 2))]) == [False]  # ... is refused by the fingerprint


def pushed_pages(spider: FriendsSpider, queue: InFlightQueue, j: JobArgs, ids: list[int], level: int = 2) -> bytes:
    """What a worker does with the ids a page of ``j`` found: the first pages its spider builds (NetworkSpider.expand),
    pushed by its queue as the scheduler would, their flags read as the queue reads them (claims_pushed)."""
    items = [queue.prepare(r) for r in spider.expand(j, ids, level, claimer=f"https://api.test/page-{ids[0]}")]
    flags = queue.push_flags(items)
    queue.claims_pushed(items, flags)
    return flags


def test_a_page_found_users_are_claimed_by_their_pushes_and_a_redelivered_page_queues_nothing_twice(redis_url: str):
    """A job without max_users: the users a page finds are claimed by the push of their first pages (no
    seen_claim.lua call), counted as expanded from the push's flags; a worker builds no first page for a user it
    knows is claimed; a page fetched again by another worker (the first died after its push, before its ack) gets
    every first page refused: nothing is queued or counted twice."""
    r = redis.Redis.from_url(redis_url)
    j = job("push-claims")
    (a, qa), (b, qb) = worker(redis_url), worker(redis_url)
    qa.stats, qb.stats = a.crawler.stats, b.crawler.stats
    a.store.save(j)
    assert [p.url for p in a.expand(j, [1], 1, claimer="seed")]  # the seed: claimed by seen_claim.lua, as before
    assert qa.push_many([qa.prepare(a.first_page(j, 1, 1))]) == [True]
    found = list(range(100, 163))
    assert pushed_pages(a, qa, j, found) == b"2" * 63
    assert qa.stats.get_value("tweetform/users/expanded") == 1 + 63 and a.store.expanded_count(j) == 64
    assert qa.stats.get_value("dupefilter/filtered") is None
    assert not list(a.expand(j, found[:40], 2, claimer="another page"))  # known claimed here: no page built
    again = pushed_pages(b, qb, j, found + [500])  # the page fetched again elsewhere, and a new user
    assert again == b"3" * 63 + b"2" and qb.stats.get_value("tweetform/users/expanded") == 1
    assert sorted(queued(r)) == sorted(["~1,1", *(f"~{u},2" for u in [*found, 500])])  # each first page once
    assert r.hget(keys.job_progress("push-claims"), "pending/2") == b"64"
    assert not list(b.expand(j, found, 2, "x"))  # the refusals taught the other worker they are claimed


def test_a_job_pushed_again_under_its_id_is_not_expanded_with_the_old_jobs_claims(redis_url: str):
    """A worker remembers the users claimed in a job; the job purged and pushed again under the same id is another
    job: right after its next pop the worker forgets the old job's users, and the new job's pages expand them again."""
    from tweetform.state.redis import control

    r = redis.Redis.from_url(redis_url)
    spider, queue = worker(redis_url)
    j = job("again")
    spider.store.save(j)
    list(spider.expand(j, [1], 1, claimer="seed"))
    assert pushed_pages(spider, queue, j, [7, 8, 9]) == b"222"
    assert not list(spider.expand(j, [7, 8, 9], 2, claimer="p"))
    control.purge_job(r, "again")
    spider.store.save(j)
    list(spider.expand(j, [1], 1, claimer="seed"))  # the new job's seed claim: a new layout, born now
    empty = keys.queue("friends", "/nothing")
    got = queue.pop_checking_claims([keys.in_flight("friends"), keys.deliveries("friends"), empty],
                                    [queue.worker, "L", keys.job_templates(), 1.0, 60, "rid", "", "/nothing", 0, 0])
    assert got[0] is None  # nothing to take; the layout's marks were read with it
    assert pushed_pages(spider, queue, j, [7, 8, 9]) == b"222"  # claimed again, in the new job


def test_the_users_a_page_found_are_claimed_together_with_its_acknowledgement(redis_url: str):
    """The first pages a page's callback yields for users its push claims wait for the page's acknowledgement, and
    go with it in one push: a flush in the middle of the callback's output (a pop, a heartbeat) sends none of them,
    so no page the first ones queued can be fetched, and claim one of the others a level deeper, before the rest are
    claimed. Before, a worker paused in the middle of a page's output let another claim those users at level 3
    (test_state_redis.py::test_stalled_worker_is_fenced_after_its_lease_is_reaped lost their friends)."""
    from scrapy import Request

    from tweetform.meta import META_QID

    r = redis.Redis.from_url(redis_url)
    spider, queue = worker(redis_url)
    j = job("together")
    spider.store.save(j)
    list(spider.expand(j, [1], 1, claimer="seed"))
    page = Request("https://api.test/2/users/1/following", meta={META_QID: "41"})
    queue.held.add("41")  # taken by this worker (pop_from)
    for n, request in enumerate(spider.expand(j, [10, 11, 12], 2, claimer=page.url, found_by="41")):
        queue.push(request)
        queue.flush_unsent()  # as a pop between two of the callback's requests would
        assert queued(r) == [] and n < 3
    queue.finished([page])  # its callback's output handled: acknowledged at the next sync, its first pages first
    queue.sync()
    assert queued(r) == ["~10,2", "~11,2", "~12,2"] and spider.store.expanded_count(j) == 4


def test_a_bluesky_network_job_claims_dids_by_their_key_in_the_push_of_their_first_page(redis_url: str):
    """Bluesky's users are DIDs, claimed under api.bluesky.did_key: a job without max_users claims them in the push
    of their first pages too (packed as the DID and its level), known ones are not built again, a page fetched again
    elsewhere queues none twice, and a malformed DID is never claimed."""
    from tweetform.api import bluesky

    r = redis.Redis.from_url(redis_url)
    (a, qa), (b, qb) = worker(redis_url), worker(redis_url)
    qa.stats, qb.stats = a.crawler.stats, b.crawler.stats
    seed = "did:plc:" + "a" * 24
    j = JobArgs(spider="friends", job="bsky", api="bluesky", bucket="friend_ids", dids=[seed], depth=3)
    a.store.save(j)
    list(a.expand(j, [seed], 1, claimer="seed"))
    found = ["did:plc:" + chr(ord("b") + n % 20) * 23 + "bcdefghijklmnopqrstuvwxyz"[n // 20] for n in range(60)]
    assert len(set(found)) == 60 and all(bluesky.is_did(d) for d in found)
    assert pushed_pages(a, qa, j, [*found, "did:bad"]) == b"2" * 60
    assert qa.stats.get_value("tweetform/users/expanded") == 1 + 60 and a.store.expanded_count(j) == 61
    assert not list(a.expand(j, found, 2, claimer="another page"))
    assert pushed_pages(b, qb, j, found[:30]) == b"3" * 30
    follows = keys.queue("friends", "app.bsky.graph.getFollows")
    pages = [p for m in r.zrange(follows, 0, -1) for p in m.decode().split("\t", 2)[2].split("\n")]
    assert sorted(pages) == sorted(f"~{d},2" for d in found)  # each first page once, as its DID and level


def test_a_worker_forgets_the_users_it_knew_claimed_when_redis_comes_back_without_their_claims():
    """Redis restarted from data older than the worker's memory (a crash after its last fsync, an RDB snapshot, a
    replica promoted): the claims the worker learnt from its pushes are gone, and the page that found those users is
    in flight again (its acknowledgement went with them). Fetched again, it must queue them again: a worker that still
    trusted its memory of the claims built no first page for them, and the users were lost."""
    from tweetform.state.redis import connection
    from tweetform.testing.servers import RedisServer

    server = RedisServer()
    try:
        spider, _ = worker(server.url)
        queue = InFlightQueue(connection.for_crawler(spider.crawler), spider, keys.queue("friends", ""))  # the worker's client
        queue.bind(JobDupeFilter.from_spider(spider), None, None)
        j = job("restored")
        spider.store.save(j)
        list(spider.expand(j, [1], 1, claimer="seed"))
        server.client.save()  # the data Redis comes back with: the seed claimed, nothing found yet
        assert pushed_pages(spider, queue, j, [7, 8, 9]) == b"222"
        assert not list(spider.expand(j, [7, 8, 9], 2, claimer="p"))  # known claimed here
        server.restart(down_for=0)
        assert server.client.hget(keys.expanded("restored"), "n") == b"1"  # Redis lost the claims of 7, 8, 9
        empty = keys.queue("friends", "/nothing")
        queue.pop_checking_claims([keys.in_flight("friends"), keys.deliveries("friends"), empty],
                                  [queue.worker, "L", keys.job_templates(), 1.0, 60, "rid", "", "/nothing", 0, 0])  # the page taken again
        assert pushed_pages(spider, queue, j, [7, 8, 9]) == b"222"  # built, pushed and claimed again
    finally:
        server.stop()


def test_a_job_the_previous_release_started_goes_on_claiming_before_the_push_and_is_never_remembered(redis_url: str):
    """The previous tweetform marked every job's claims layout with marks=1: two jobs it seeded under one id (the first
    purged meanwhile, workers of both releases running) have the same marks, so a worker could not tell them apart and
    would expand the second with the first one's claims (its users lost). Such a job goes on as it began: its users
    claimed by seen_claim.lua before their pages are pushed, nothing remembered."""
    from tweetform.state.redis import control, seen

    r = redis.Redis.from_url(redis_url)
    spider, queue = worker(redis_url)
    j = job("previous")
    for n in range(2):  # the job, then another under its id, each seeded by the previous release
        if n:
            r.delete(Q)
            control.purge_job(r, "previous")
        spider.store.save(j)
        list(spider.expand(j, [1], 1, claimer="seed"))
        r.hset(keys.expanded("previous"), "marks", 1)
        empty = keys.queue("friends", "/nothing")
        queue.pop_checking_claims([keys.in_flight("friends"), keys.deliveries("friends"), empty],
                                  [queue.worker, "L", keys.job_templates(), 1.0, 60, "rid", "", "/nothing", 0, 0])
        pushed_pages(spider, queue, j, [7, 8, 9])
        assert sorted(queued(r)) == ["~7,2", "~8,2", "~9,2"] and spider.store.expanded_count(j) == 4
    tags = {int(u): v for b in seen.bucket_keys(r, "previous") for u, v in r.hgetall(b).items()}
    assert sorted(tags) == [1, 7, 8, 9] and b"-1" not in tags.values()  # claimed by seen_claim.lua, not by a push
