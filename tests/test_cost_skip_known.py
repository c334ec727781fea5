"""Never pay twice: users and tweets hydration with skip_known=true leaves out what the bucket already holds."""

from __future__ import annotations

from pathlib import Path

import pytest
from crawling import FULL_LOG, bucket, ids_of, run_crawl
from test_cost_budget import stats_of

FAST = ("--users", "3000", "--seed", "7", "--window", "1")


@pytest.fixture
def box(sandbox_factory):
    return sandbox_factory(*FAST)


def billed(box, kind: str) -> int:
    return sum(a["resources"].get(kind, 0) for a in box.get("/_sandbox/billing")["apps"].values())


@pytest.mark.parametrize("api", ["2", "1.1"])
def test_users_skip_known_pays_only_for_new_ids(box, tmp_path: Path, api: str):
    ids = box.get("/_sandbox/truth/followers/12")["ids"][:150]
    first, more = ids[:100], ids[100:]
    ok = run_crawl(box, "users", tmp_path, user_id=",".join(map(str, first)), api=api, job="first")
    assert ok.returncode == 0, ok.stderr[-2000:]
    box.post("/_sandbox/billing/reset")  # another day: what is fetched again is paid again
    again = run_crawl(box, "users", tmp_path, user_id=",".join(map(str, ids)), api=api, job="second", skip_known="true", settings=FULL_LOG)
    assert again.returncode == 0, again.stderr[-2000:]
    pages = bucket(tmp_path, "users")
    assert set(ids_of(pages["second"])) <= set(more)  # none of the first job's users again
    assert billed(box, "user") == len(ids_of(pages["second"])) <= len(more)
    assert stats_of(again)["tweetform/cost/skipped_known"] == len(set(ids_of(pages["first"])) & set(ids))
    assert "skip_known: " in again.stderr and "are left out (not paid again)" in again.stderr


def test_tweets_skip_known_pays_only_for_new_tweets(box, tmp_path: Path):
    uid = box.get("/_sandbox/examples")["long_timeline"][0]
    tweets = box.get(f"/_sandbox/truth/timeline/{uid}")["ids"][:250]
    run_crawl(box, "tweets", tmp_path, tweet_id=",".join(map(str, tweets[:120])), job="t1")
    box.post("/_sandbox/billing/reset")
    again = run_crawl(box, "tweets", tmp_path, tweet_id=",".join(map(str, tweets)), job="t2", skip_known="true")
    assert again.returncode == 0, again.stderr[-2000:]
    pages = bucket(tmp_path, "tweets")
    got_before, got_now = set(ids_of(pages["t1"])), set(ids_of(pages["t2"]))
    assert got_now and not got_now & got_before and got_now <= set(tweets[120:])
    posts = {t["id"] for p in pages["t2"] for t in (p.get("data") or []) + ((p.get("includes") or {}).get("tweets") or [])}
    assert billed(box, "post") == len(posts)  # what the second job's pages returned, nothing of the first job's lists again
    # without skip_known the same command pays for everything again
    box.post("/_sandbox/billing/reset")
    full = run_crawl(box, "tweets", tmp_path / "full", tweet_id=",".join(map(str, tweets)), job="t3")
    assert full.returncode == 0 and billed(box, "post") > len(posts)


def test_push_resolves_skip_known_from_its_output_dir(box, redis_url: str, tmp_path: Path):
    import json
    import subprocess
    import sys

    import redis
    from test_distributed import ROOT, worker_env

    ids = box.get("/_sandbox/truth/followers/12")["ids"][:130]
    ok = run_crawl(box, "users", tmp_path, user_id=",".join(map(str, ids[:100])), job="here")
    assert ok.returncode == 0, ok.stderr[-2000:]
    known = set(ids_of(bucket(tmp_path, "users")["here"]))
    env = worker_env(box, redis_url, tmp_path)

    def push(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "scrapy", "push", "users", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)

    done = push("--user-id", ",".join(map(str, ids)), "--skip-known", "true", "--job", "there")
    assert done.returncode == 0, done.stderr
    [message] = [json.loads(m) for m in redis.Redis.from_url(redis_url).lrange("tweetform:users:start_urls", 0, -1)]
    assert {int(i) for i in str(message["user_id"]).split(",")} == set(ids) - known
    assert f"skip_known: {len(known)} id(s) already in bucket users left out" in done.stdout
    nothing = push("--user-id", ",".join(map(str, sorted(known))), "--skip-known", "true")
    assert nothing.returncode == 0 and "nothing to push" in nothing.stdout
