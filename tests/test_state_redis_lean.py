"""Issue 15 §4, lean Redis: what a crawl costs Redis, in commands and in bytes, is bounded."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import redis
from crawling import bucket, ids_of, users_written
from test_distributed import (WORLD, assert_network_equals_truth, no_process_left_behind, push,  # noqa: F401 (fixture)
                              start_workers, wait_all, wait_registered, worker_env)

from tweetform.state.redis import control, keys


def scans(r: redis.Redis) -> int:
    return int(r.info("commandstats").get("cmdstat_scan", {}).get("calls", 0))


def test_workers_never_scan_the_keyspace_on_a_timer(sandbox_factory, redis_url: str, tmp_path: Path):
    """Workers find queues, dead workers' job messages and ended jobs' keys through indexes: over many
    heartbeats of a crawling, then idle, worker (endpoint refresh every 2 s, reaping every 5 beats)
    Redis serves no SCAN. Before: a SCAN of the whole keyspace every 2 s per worker and every 5 beats."""
    box = sandbox_factory(*WORLD, "--latency", "0.2")
    env = worker_env(box, redis_url, tmp_path)
    r = redis.Redis.from_url(redis_url)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    workers = start_workers(env, 1, False, "-s", "CONCURRENT_REQUESTS=2", spiders="friends")
    wait_registered(redis_url, workers)
    time.sleep(1.0)  # start-up is over (a worker indexes queues of an older tweetform once)
    before = scans(r)
    push(env, "friends", "--user-id", str(seed), "--depth", "2", "--job", "noscan")
    deadline = time.monotonic() + 120
    while r.hget(keys.job("noscan"), "state") != b"done" and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3.0)  # idle: endpoint refreshes, reaping and the expire_ended sweep go on
    workers[0].send_signal(signal.SIGTERM)
    wait_all(workers)
    assert scans(r) == before
    assert_network_equals_truth(box, tmp_path, seed, 2)


def test_expire_ended_names_the_level_keys_it_expires(redis_url: str):
    """A finished max_users job's level keys get their TTL, found by name from the job's depth."""
    r = redis.Redis.from_url(redis_url)
    r.hset(keys.job("lv"), mapping={"state": "done", "args": json.dumps({"spider": "friends", "depth": 3})})
    r.zadd(keys.jobs(), {"lv": 1})
    level_keys = [keys.level_users("lv", 2), keys.level_users("lv", 2) + ":seq", keys.level_found("lv", 3), keys.level_opened("lv", 0)]
    for key in level_keys:
        r.hset(key, "x", 1) if key.endswith(":found") else r.set(key, 1) if key.endswith(":seq") else r.sadd(key, "x")
    before = scans(r)
    assert control.expire_ended(r, 60) == ["lv"]
    assert scans(r) == before
    assert all(0 < r.ttl(key) <= 60 for key in level_keys)


def test_a_depth3_crawl_holds_at_most_32_bytes_per_seen_user_in_redis(sandbox_factory, redis_url: str, tmp_path: Path):
    """Σ MEMORY USAGE of every tweetform key once the job is done (dupe filter, written pages, billed ids,
    claims, the job's records) ÷ distinct users in its output ≤ 32 — exact sets, in compact buckets
    (compact.py). Before: one SET of hex fingerprints, one of page ids and 1,024 billed-id sets."""
    box = sandbox_factory(*WORLD)
    env = worker_env(box, redis_url, tmp_path)
    r = redis.Redis.from_url(redis_url)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    push(env, "friends", "--user-id", str(seed), "--depth", "3", "--job", "lean")
    wait_all(start_workers(env, 2, True, "-s", "CONCURRENT_REQUESTS=4", spiders="friends"))
    assert r.hget(keys.job("lean"), "state") == b"done"
    assert_network_equals_truth(box, tmp_path, seed, 3)  # exact: every page once, none missing
    pages = bucket(tmp_path, "friend_ids")
    users = {int(k) for k in pages} | {u for lines in pages.values() for u in ids_of(lines)}
    held = sum(int(r.memory_usage(k, samples=0) or 0) for k in r.scan_iter(match="tweetform:*", count=1000))
    print(f"{held / len(users):.1f} bytes per seen user ({len(users)} users, {held} bytes)")
    assert held / len(users) <= 32


def test_while_a_depth3_crawl_runs_redis_holds_at_most_32_bytes_per_seen_user(sandbox_factory, redis_url: str, tmp_path: Path):
    """Sampled all through a real depth-3 crawl: Σ MEMORY USAGE of every tweetform key (queued and in-flight
    requests included) ÷ distinct users in the output so far ≤ 32, once the output holds 1,000 users; before
    that the keys any job has whatever its size (job records, workers, quota lanes, each bucket's ~100-byte
    key) are most of it, so the per-user figure is far higher (~490 B at 15 users, ~75 at 250, ~43 at 500)
    and what is held there is bounded in all instead: ≤ 32 kB, the first 1,000 users' 32 B each (~22 kB
    measured). A claimed user's queued first page is its id and level (~15 bytes), deduplicated by its
    claim, not ~750 bytes of request JSON plus a fingerprint. Before: 110 B per user at 1,000 users."""
    box = sandbox_factory(*WORLD, "--latency", "0.2")  # a crawl of some seconds: sampled many times while it runs
    env = worker_env(box, redis_url, tmp_path)
    r = redis.Redis.from_url(redis_url)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    push(env, "friends", "--user-id", str(seed), "--depth", "3", "--job", "lean")
    samples: list[tuple[int, int, int]] = []  # (users in the output, bytes of every tweetform key, requests queued)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            users = users_written(tmp_path / "friend_ids")
            if users and r.hget(keys.job("lean"), "state") == b"running":
                held = sum(int(r.memory_usage(k, samples=0) or 0) for k in r.scan_iter(match="tweetform:*", count=1000))
                samples.append((users, held, int(r.hget(keys.job("lean"), "queued") or 0)))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        wait_all(start_workers(env, 2, True, "-s", "CONCURRENT_REQUESTS=4", spiders="friends"))
    finally:
        done.set()
        sampler.join()
    assert r.hget(keys.job("lean"), "state") == b"done"
    assert_network_equals_truth(box, tmp_path, seed, 3)  # exact: every page once, none missing
    early = [s for s in samples if s[0] < 1000]
    assert early and max(held for _, held, _ in early) <= 32 * 1000, early  # the start of the crawl counts too
    samples = [s for s in samples if s[0] >= 1000]
    assert sum(1 for _, _, queued in samples if queued >= 50) >= 3, samples  # sampled while requests waited
    users, held, queued = max(samples, key=lambda s: s[1] / s[0])
    print(f"peak while running: {held / users:.1f} bytes per seen user ({users} users, {queued} requests queued)")
    assert held / users <= 32
