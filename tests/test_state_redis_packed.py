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
    crawler = unit_crawler(FriendsSpider, {"REDIS_URL": redis_url, "TWEETFORM_API_BASE": "http://api.test"})
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
