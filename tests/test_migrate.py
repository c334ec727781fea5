"""Upgrading mid-job: a job begun by tweetform before the compact sets (before commit 4036558, issue 15)
and continued by today's code fetches, writes and bills nothing twice (state/redis/migrate.py).

The older state is built as that code wrote it: a half-done job is crawled, then its compact sets are
rewritten in the older form and key names (a job's dupe filter one SET of hex fingerprints, its written
pages one SET of hex page ids, a day's billed ids in 1,024 SETs by id mod 1024, each with a 2-day TTL;
no migrations mark), with a real Redis, sandbox and workers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from crawling import bucket, errors_of
from test_distributed import (ROOT, WORLD, assert_network_equals_truth, no_process_left_behind, push, start_workers,  # noqa: F401
                              wait_all, worker_env)

from tweetform.cost.redis_budget import spend_of
from tweetform.state.redis import compact, keys, scripts

FOLLOWING = "/2/users/:id/following"


def admin(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scrapy", "admin", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


def as_before_the_compact_sets(r: redis.Redis, job: str, spider: str) -> dict[str, int]:
    """Rewrite today's compact sets the way tweetform kept them before 4036558; how many members each kind had."""
    counts = {}
    for layout, old, name in ((keys.dupefilter(spider, job), f"tweetform:{spider}:dupefilter:{job}", "fingerprints"),
                              (keys.written(job), f"tweetform:job:{job}:written", "pages")):
        buckets = compact.bucket_keys(r, layout)
        members = [m.hex() for b in buckets for m in r.hkeys(b)]  # the older code kept them in hex
        r.sadd(old, *members)
        r.delete(layout, *buckets)
        counts[name] = len(members)
    billed = 0
    for raw in list(r.scan_iter(match="tweetform:cost:billed:*")):
        layout = raw.decode()
        if r.type(layout) != b"hash":
            continue  # a bucket: read through its layout
        app, kind, day = layout.removeprefix("tweetform:cost:billed:").rsplit(":", 2)
        buckets = compact.bucket_keys(r, layout)
        for b in buckets:
            for member in r.smembers(b):
                if member != b"0":  # the compact buckets' sentinel
                    old = f"tweetform:cost:seen:{app}:{kind}:{day}:{int(member) % 1024}"
                    r.sadd(old, int(member))
                    r.expire(old, 2 * 86_400)
                    billed += 1
        r.delete(layout, *buckets)
    counts["billed"] = billed
    r.delete("tweetform:migrations")  # the older code had no such mark
    return counts


def served(box, endpoint: str) -> int:
    return sum(c["served"] for c in box.get("/_sandbox/counters")["limits"] if c["endpoint"] == endpoint)


def test_a_job_begun_before_the_compact_sets_continues_after_the_upgrade_fetching_and_billing_nothing_twice(
        sandbox_factory, redis_url: str, tmp_path: Path):
    box = sandbox_factory(*WORLD, "--latency", "0.01")  # its own sandbox: its bill and counters are this test's
    env = worker_env(box, redis_url, tmp_path)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    push(env, "friends", "--user-id", str(seed), "--depth", "2", "--job", "old", "--budget", "0.4")
    wait_all(start_workers(env, 1, True, "-s", "CONCURRENT_REQUESTS=4"))
    r = redis.Redis.from_url(redis_url)
    assert r.hget(keys.job("old"), "state") == b"budget_exhausted" and r.zcard(keys.parked("old")) > 0  # half done

    folded = as_before_the_compact_sets(r, "old", "friends")
    assert min(folded.values()) > 0, folded
    assert admin(env, "budget", "old", "+1000").returncode == 0
    wait_all(start_workers(env, 2, True, "-s", "CONCURRENT_REQUESTS=4"))  # two upgraded workers start at once

    assert r.hget(keys.job("old"), "state") == b"done"
    assert_network_equals_truth(box, tmp_path, seed, 2)  # complete, no page written twice
    pages = sum(len(lines) for lines in bucket(tmp_path, "friend_ids").values()) + len(errors_of(tmp_path))
    assert served(box, FOLLOWING) == pages  # no page fetched twice
    bill = box.get("/_sandbox/billing")["total_usd"]
    assert spend_of(r, "old")["spent_usd"] == pytest.approx(bill)  # no id billed twice
    # the older SETs are gone, folded: the compact sets hold what they held
    assert not r.exists("tweetform:friends:dupefilter:old", "tweetform:job:old:written")
    assert not list(r.scan_iter(match="tweetform:cost:seen:*"))
    assert compact.members(r, keys.dupefilter("friends", "old")) >= folded["fingerprints"]
    assert compact.members(r, keys.written("old")) == pages


def test_admin_migrate_folds_every_job_and_the_billed_ids_at_once(redis_url: str, tmp_path: Path):
    """What the older SETs held is what today's scripts find: requests it had seen are not queued again,
    pages it had written are known, ids it had billed are not new."""
    from crawling import unit_crawler
    from scrapy import Request, Spider

    from tweetform.state.redis.scheduler import RedisScheduler

    crawler = unit_crawler(Spider, {"REDIS_URL": redis_url})
    crawler.spider = spider = Spider.from_crawler(crawler, name="friends")
    seen = [Request(f"https://api.x.com/2/users/{n}/following", meta={"tweetform_ctx": {"job": "a"}}) for n in range(300)]
    r = redis.Redis.from_url(redis_url)
    pages = [bytes([i, 9]) * 5 for i in range(200)]
    r.zadd(keys.jobs(), {"a": 1})
    r.hset(keys.job("a"), mapping={"state": "running", "args": '{"spider": "friends", "job": "a"}'})
    r.sadd("tweetform:friends:dupefilter:a", *(crawler.request_fingerprinter.fingerprint(q).hex() for q in seen))
    r.sadd("tweetform:job:a:written", *(p.hex() for p in pages))
    ids = list(range(10**15, 10**15 + 5000, 3))
    for i in ids:
        r.sadd(f"tweetform:cost:seen:demo-app-1:user:2026-12-06:{i % 1024}", i)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWEETFORM_", "REDIS_"))}
    env.update({"REDIS_URL": redis_url, "PYTHONWARNINGS": "error", "TWEETFORM_OUTPUT_DIR": str(tmp_path)})
    done = admin(env, "migrate")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ("1 job(s) looked at; folded into compact sets: 300 request fingerprint(s), 200 written page id(s), "
                                   f"{len(ids)} billed id(s)")
    assert not list(r.scan_iter(match="tweetform:*dupefilter:*")) and not r.exists("tweetform:job:a:written")
    assert not list(r.scan_iter(match="tweetform:cost:seen:*"))

    scheduler = RedisScheduler.from_crawler(crawler)
    scheduler.open(spider)
    for q in [*seen, Request("https://api.x.com/2/users/1000/following", meta={"tweetform_ctx": {"job": "a"}})]:
        scheduler.enqueue_request(q)
    scheduler.sync()
    assert len(scheduler.queue) == 1  # only the request the older filter had not seen
    known = compact.bucket_prefix(keys.written("a"))
    page_known = scripts.load(r, "page_known")
    assert all(page_known(keys=[keys.written("a")], args=[known, p]) == 1 for p in pages)
    assert page_known(keys=[keys.written("a")], args=[known, b"\x01" * 10]) == 0
    billed = keys.cost_seen("demo-app-1", "user", "2026-12-06")
    assert compact.members(r, billed) == len(ids)
    cost_seen = scripts.load(r, "cost_seen")
    assert cost_seen(keys=[billed], args=[compact.bucket_prefix(billed), compact.set_load(r), 172800, *ids[:50], 7]) == 1  # only 7 is new
    again = admin(env, "migrate")
    assert again.stdout.strip() == "1 job(s) looked at; folded into compact sets: 0 request fingerprint(s), 0 written page id(s), 0 billed id(s)"
