"""``-a api=bluesky`` through Redis: a job pushed to two workers, one SIGKILLed mid-crawl,
equals the sandbox's truth (the first max_users in BFS order, each list once, nothing lost)."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import redis
from crawling import bucket
from test_distributed import WORLD, holds_requests, no_process_left_behind, push, start_workers, wait_all, worker_env

__all__ = ["no_process_left_behind"]  # its autouse fixture: no worker outlives a test


def test_two_workers_one_killed_share_a_bluesky_depth3_job(sandbox_factory: Any, redis_url: str, tmp_path: Path) -> None:
    box = sandbox_factory(*WORLD, "--latency", "0.2")
    env = {**worker_env(box, redis_url, tmp_path), "TWEETFORM_BLUESKY_APPVIEW": box.base, "TWEETFORM_BLUESKY_PDS": box.base}
    seed = box.get("/_sandbox/truth/bsky/accounts")[0]["did"]
    r = redis.Redis.from_url(redis_url)
    # max_users: level by level, the levels' DIDs in Redis (and a job that stays small)
    out = push(env, "friends", "--api", "bluesky", "--user-id", seed, "--depth", "3", "--max-users", "200", "--job", "bsky3")
    assert "pushed job bsky3" in out
    slow = ("-s", "CONCURRENT_REQUESTS=2")
    steady = start_workers(env, 1, True, *slow, spiders="friends")
    victim = start_workers(env, 1, False, *slow, spiders="friends")[0]
    deadline = time.monotonic() + 60
    while not holds_requests(r, victim.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert holds_requests(r, victim.pid), "the second worker never took part"
    victim.send_signal(signal.SIGKILL)  # with requests in flight
    victim.wait()  # its output is read (and closed) when the test ends
    logs = wait_all(steady, timeout=240)
    assert any("put back" in log for log in logs), "the killed worker's requests were not reaped"
    truth = box.get(f"/_sandbox/truth/bsky/reachable?seeds={seed}&depth=3&direction=follows&max_users=200")["dids"]
    pages = bucket(tmp_path, "friend_ids")
    assert sorted(pages) == sorted(truth) and len(truth) == 200
    page_ids = [line["__tweetform"]["page_id"] for lines in pages.values() for line in lines]
    assert len(page_ids) == len(set(page_ids)), "a page was written twice"
    for did in truth[:40]:
        got = [p["did"] for line in pages[did] for p in line["follows"]]
        assert got == box.get(f"/_sandbox/truth/bsky/follows/{did}")["dids"], did
