"""Issue 10 feature 8: 32 bytes per seen user, exact — a million claims against the session's Redis.

The ids go through the job store's claim interface (``RedisJobStore.claim_users``, what the
network spiders call once per page) in pages of 5,000, like Twitter's id pages: half are
32-bit ids of old accounts, half 61-bit snowflake ids of new ones (past Lua's 53-bit numbers).
"""

from __future__ import annotations

import random
from typing import Iterator

import pytest
import redis

from tweetform.job import JobArgs
from tweetform.state.redis import control, keys, seen
from tweetform.state.redis.jobs import RedisJobStore

PAGE = 5000
BIG = "friends-20261201T230000-9f3a"  # a job id as scrapy push makes them: key names count too


def twitter_like_ids(n: int, seed: int) -> list[int]:
    """``n`` distinct ids in random order, old (32-bit) and snowflake (61-bit) ones alternating."""
    rng = random.Random(seed)
    old, snowflakes = rng.sample(range(10**5, 2**32), n // 2), rng.sample(range(11 * 10**17, 19 * 10**17), n - n // 2)
    return [u for pair in zip(snowflakes, old) for u in pair] + snowflakes[len(old):]


def pages(ids: list[int]) -> Iterator[tuple[int, list[int]]]:
    for start in range(0, len(ids), PAGE):
        yield start // PAGE, ids[start:start + PAGE]


def job(name: str, max_users: int | None = None) -> JobArgs:
    return JobArgs(spider="friends", job=name, api="1.1", bucket="friend_ids", user_ids=[12], depth=3, max_users=max_users)


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def used_memory(r: redis.Redis) -> int:
    return int(r.info("memory")["used_memory"])


def test_a_million_users_cost_at_most_32_bytes_each_and_are_claimed_exactly_once(r: redis.Redis):
    store, j = RedisJobStore(r), job(BIG)
    ids = twitter_like_ids(1_001_000, seed=10)
    ids, new = ids[:1_000_000], ids[1_000_000:]
    before = used_memory(r)
    for page, uids in pages(ids):
        assert store.claim_users(j, uids, 2, f"https://api.twitter.com/1.1/friends/ids.json?user_id={page}") == uids
    per_user_used = (used_memory(r) - before) / len(ids)
    assert per_user_used <= 32, per_user_used  # the old single hash: ~245
    assert store.expanded_count(j) == len(ids)

    buckets = seen.bucket_keys(r, BIG)
    pipe = r.pipeline(transaction=False)
    for key in buckets:
        pipe.object("encoding", key)
        pipe.memory_usage(key, samples=0)
        pipe.hlen(key)
    found = pipe.execute()
    encodings, sizes, lengths = set(found[0::3]), found[1::3], found[2::3]
    assert encodings == {b"listpack"}  # every bucket compact
    assert sum(lengths) == len(ids)  # each user in exactly one bucket
    assert max(lengths) < int(r.config_get("hash-max-listpack-entries")["hash-max-listpack-entries"])
    assert sum(sizes) / len(ids) <= 32  # MEMORY USAGE of the buckets, per user

    # claimed once: every page is refused to another claimer, and its own claimer gets it again
    for page, uids in pages(ids[:200_000]):
        assert store.claim_users(j, uids, 3, f"https://api.twitter.com/1.1/friends/ids.json?user_id={page + 1}") == []
        if page % 4 == 0:
            assert store.claim_users(j, uids, 2, f"https://api.twitter.com/1.1/friends/ids.json?user_id={page}") == uids
    # a page of old and new ids: the new ones in order, the old ones only to their claimer
    mixed = [u for pair in zip(ids[:1000], new) for u in pair]
    assert store.claim_users(j, mixed, 3, "https://api.twitter.com/1.1/friends/ids.json?user_id=0") == mixed
    assert store.claim_users(j, ids[PAGE:PAGE + 10] + new[:10], 3, "seed") == []
    assert store.expanded_count(j) == len(ids) + len(new)
    assert store.claim_users(job("other"), ids[:PAGE], 1, "seed") == ids[:PAGE]  # another job claims for itself


def test_max_users_stops_at_exactly_max_users_in_claim_order(r: redis.Redis):
    store, cap = RedisJobStore(r), 123_457
    j = job("capped", max_users=cap)
    ids = twitter_like_ids(200_000, seed=11)
    claimed: list[int] = []
    for _, uids in pages(ids):
        claimed += store.claim_users(j, uids, 2, "level:2")
    assert claimed == ids[:cap]
    assert store.expanded_count(j) == cap
    # the level's users, in claim order, as the level-by-level expansion reads them
    assert [int(u) for u in r.zrange(keys.level_users("capped", 2), 0, -1)] == ids[:cap]
    assert store.claim_users(j, ids[cap:cap + 10], 3, "level:3") == []  # full: no one new
    assert store.claim_users(j, ids[:10], 2, "level:2") == ids[:10]  # its own, again
    assert store.claim_users(j, ids[:10], 3, "level:3") == []


def test_buckets_stay_listpacks_under_a_small_listpack_limit(r: redis.Redis):
    default = r.config_get("hash-max-listpack-entries")["hash-max-listpack-entries"]
    r.config_set("hash-max-listpack-entries", 64)  # a stricter server: smaller buckets (the default load, 32, would overflow)
    try:
        store, j = RedisJobStore(r), job("strict")
        ids = twitter_like_ids(100_000, seed=12)
        for page, uids in pages(ids):
            assert store.claim_users(j, uids, 2, f"page-{page}") == uids
        buckets = seen.bucket_keys(r, "strict")
        pipe = r.pipeline(transaction=False)
        for key in buckets:
            pipe.object("encoding", key)
        assert set(pipe.execute()) == {b"listpack"}
        assert store.expanded_count(j) == len(ids)
    finally:
        r.config_set("hash-max-listpack-entries", default)


def test_a_finished_jobs_claims_expire_and_purge_removes_them(r: redis.Redis):
    store, j = RedisJobStore(r), job("ended")
    ids = twitter_like_ids(20_000, seed=13)
    store.save(j)
    for page, uids in pages(ids):
        store.claim_users(j, uids, 2, f"page-{page}")
    buckets = seen.bucket_keys(r, "ended")
    assert len(buckets) > 100 and store.expanded_count(j) == len(ids)
    r.hset(keys.job("ended"), "state", "done")
    assert control.expire_ended(r, 3600) == ["ended"]
    pipe = r.pipeline(transaction=False)
    for key in [keys.expanded("ended"), *buckets]:
        pipe.ttl(key)
    assert all(0 < ttl <= 3600 for ttl in pipe.execute())
    assert [row["users_expanded"] for row in control.jobs(r) if row["job"] == "ended"] == [len(ids)]
    control.purge_job(r, "ended")
    assert not list(r.scan_iter(match="tweetform:job:ended*"))


def test_each_user_is_in_the_bucket_its_exact_id_gives_even_past_53_bits(r: redis.Redis):
    store, j = RedisJobStore(r), job("exact")
    edge = [2**63 - 1, 2**53 + 1, 2**53 + 2, 10**15 - 1, 10**15, 10**18 + 7, 1]  # past Lua's exact doubles too
    ids = edge + twitter_like_ids(30_000, seed=14)
    for page, uids in pages(ids):
        assert store.claim_users(j, uids, 2, f"page-{page}") == uids
    lvl, split = (int(v) for v in r.hmget(keys.expanded("exact"), "lvl", "split"))
    pipe = r.pipeline(transaction=False)
    for uid in ids:
        pipe.hexists(f"{keys.expanded('exact')}:{seen.bucket_index(uid, lvl, split)}", str(uid))
    assert all(pipe.execute())
    assert store.claim_users(j, [2**53 + 1, 2**53 + 3], 2, "another page") == [2**53 + 3]  # one apart, told apart


def test_claims_after_the_job_ended_expire_with_it(r: redis.Redis):
    """A late page of an ended job (expire_ended ran) claims more users: the buckets and level keys it
    creates get the job's remaining TTL. Before: they had none and outlived the job's other keys."""
    store, j = RedisJobStore(r), job("lateclaim", max_users=100_000)
    ids = twitter_like_ids(20_000, seed=15)
    store.save(j)
    store.claim_users(j, ids[:500], 2, "page-0")
    r.hset(keys.job("lateclaim"), "state", "done")
    assert control.expire_ended(r, 3600) == ["lateclaim"]
    before = set(seen.bucket_keys(r, "lateclaim"))
    for page, uids in pages(ids[500:]):
        assert store.claim_users(j, uids, 3, f"page-{page + 1}") == uids
    after = [keys.expanded("lateclaim"), *seen.bucket_keys(r, "lateclaim"), keys.level_users("lateclaim", 3)]
    assert set(after) - before, "the late claims created new buckets"
    ttls = {key: r.ttl(key) for key in after}
    assert all(0 < ttl <= 3600 for ttl in ttls.values()), {k: v for k, v in ttls.items() if v <= 0}


def test_a_cascades_conversation_claims_expire_and_purge_with_the_job(r: redis.Redis):
    """A cascade claims each conversation it searches once per job under JobArgs.conversations_job (apart
    from its posts): another level claiming it again gets nothing, and expire_ended gives those claims the
    job's TTL (purge_job drops them) instead of leaving them behind."""
    from dataclasses import replace

    store = RedisJobStore(r)
    cascade = JobArgs(spider="cascade", job="casc", api="2", bucket="cascades", tweet_ids=[2114875212800458752], depth=3)
    store.save(cascade)
    convs = replace(cascade, job=cascade.conversations_job, spider="conversation")
    ids = twitter_like_ids(300, seed=16)
    assert store.claim_users(convs, ids, 1, "seed") == ids
    assert store.claim_users(convs, ids[:10], 2, "level:2") == [] and store.expanded_count(cascade) == 0
    r.hset(keys.job("casc"), "state", "done")
    assert control.expire_ended(r, 3600) == ["casc"]
    claims = [keys.expanded(cascade.conversations_job), *seen.bucket_keys(r, cascade.conversations_job)]
    assert len(claims) > 1 and all(0 < r.ttl(key) <= 3600 for key in claims)
    control.purge_job(r, "casc")
    assert not list(r.scan_iter(match="tweetform:job:casc*"))


def test_a_workers_known_claims_are_exact_bounded_and_per_job():
    """seen.KnownClaims: what pushes said is claimed, per job; never more ids than its limit (full: forgotten and
    learnt again), at most its number of jobs (the least recently used goes), a job whose layout's marks changed
    (purged, pushed again) starts empty, one whose layout is gone is forgotten."""
    from tweetform.state.redis.seen import KnownClaims

    known = KnownClaims(limit=100, jobs=2)
    known.learn("a", [1])  # not watched: nothing kept
    known.watch("a", b"t1")
    known.learn("a", [1, 2, 3])
    assert known.unknown("a", [3, 4, 1, 5]) == [4, 5] and known.unknown("b", [1]) == [1]
    for start in range(0, 1000, 30):
        known.learn("a", list(range(start, start + 30)))
        assert known.size <= 100 and known.size == len(known.jobs["a"][1])
    known.watch("b", b"t2")
    known.learn("b", [7])
    known.watch("c", b"t3")  # a third job: "a", the least recently used, goes
    assert list(known.jobs) == ["b", "c"] and known.size == 1 and known.unknown("a", [999]) == [999]
    known.check("b", b"t2")
    assert known.unknown("b", [7, 8]) == [8]
    known.check("b", b"t9")  # another job under the id
    assert known.unknown("b", [7, 8]) == [7, 8] and "b" in known.jobs and known.size == 0
    known.check("c", None)  # purged
    assert "c" not in known.jobs
