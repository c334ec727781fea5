"""Bluesky secrets never reach Redis, a log, the stats, the output or `scrapy status` — with real processes.

A distributed Bluesky crawl (two workers through a password-protected Redis) at LOG_LEVEL=DEBUG: a
search job (searchPosts needs an account session) taken only by a worker that goes through tinyproxy
with BasicAuth, a follows job only by a worker that goes direct (each worker runs the one spider, so
both ways out are used by construction, not by how the queue happens to share the work), the
sandbox's clock moved on mid-crawl so the sessions' access tokens expire (ExpiredToken, then a
refresh or a new login): logins, refreshes and expired tokens all go through the proxy. Everything
Redis receives is captured with ``MONITOR``; the capture, the workers' logs (their stats dumps
included), `scrapy push`/`status` output and every output file are searched for the app passwords,
every access and refresh JWT the sandbox issued, and the proxy and Redis passwords — plain,
percent-encoded and base64.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis
from conftest import ROOT, SMALL_WORLD
from crawling import bucket
from test_proxies import TinyProxy
from test_secrets import PROXY_PASSWORD, PROXY_USER, REDIS_PASSWORD, canary_hits
from test_secrets_distributed import STARTED, Monitor, env_for, no_process_left_behind, scrapy, wait_done, wait_registered, written

from tweetform.sandbox.credentials import DEMO_BLUESKY_ACCOUNTS
from tweetform.testing.servers import RedisServer

__all__ = ["no_process_left_behind"]  # its autouse fixture: no worker outlives a test


def start_worker(env: dict[str, str], log: Path, spiders: str) -> subprocess.Popen:
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "scrapy", "worker", "--spiders", spiders, "-s", "TWEETFORM_EXIT_WHEN_IDLE=1",
                                 "-s", "LOG_LEVEL=DEBUG", "-s", "CONCURRENT_REQUESTS=4"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    STARTED.append(proc)
    return proc


def test_distributed_bluesky_crawl_with_expiring_sessions_and_a_proxy_leaks_no_secret(sandbox_factory: Any, tmp_path: Path) -> None:
    box = sandbox_factory(*SMALL_WORLD, "--latency", "0.15")
    server = RedisServer(password=REDIS_PASSWORD)
    proxy = TinyProxy("tf-bsky-secret", user=PROXY_USER, password=PROXY_PASSWORD).start()
    monitor = None
    try:
        accounts = DEMO_BLUESKY_ACCOUNTS[:2]
        seed = box.get("/_sandbox/truth/bsky/accounts")[2]["did"]
        truth_search = box.get("/_sandbox/truth/bsky/search?q=the")["uris"]  # also builds the index before the crawl
        output = tmp_path / "out"
        # Bluesky accounts only: a worker needs no X credential for Bluesky jobs
        env = env_for(box, server.url, output, [a.as_settings() for a in accounts],
                      TWEETFORM_BLUESKY_APPVIEW=box.base, TWEETFORM_BLUESKY_PDS=box.base)
        monitor = Monitor(server.port, REDIS_PASSWORD)
        monitor.start()
        pushed = [scrapy(env, "push", "friends", "--api", "bluesky", "--user-id", seed, "--depth", "2", "--max-users", "30",
                         "--job", "bsky-follows", "-L", "DEBUG"),
                  scrapy(env, "push", "search", "--api", "bluesky", "--query", "the", "--max-tweets", "1500",
                         "--job", "bsky-search", "-L", "DEBUG")]
        assert all(p.returncode == 0 for p in pushed), [p.stderr[-2000:] for p in pushed]
        logs = [tmp_path / "worker-proxied.log", tmp_path / "worker-direct.log"]
        # the search job (every session: logins, refreshes, expired tokens) only through the proxy, the follows job only direct
        workers = [start_worker({**env, "ROTATING_PROXY_LIST": proxy.url(), "ROTATING_PROXY_BACKOFF_BASE": "86400",
                                 "ROTATING_PROXY_BACKOFF_CAP": "86400"}, logs[0], "search"),
                   start_worker(env, logs[1], "friends")]
        wait_registered(redis.Redis.from_url(server.url), workers)
        deadline = time.monotonic() + 120
        while box.get("/_sandbox/bsky/counters")["sessions_created"] < 1 or box.counters()["requests"] < 8:
            assert time.monotonic() < deadline and all(w.poll() is None for w in workers), [log.read_text()[-2000:] for log in logs]
            time.sleep(0.05)
        box.post("/_sandbox/clock", {"advance": 7300})  # past the access tokens' 2 hours, mid-crawl
        texts = wait_done(workers, logs, timeout=240)
        status = scrapy(env, "status", "-L", "DEBUG")
        status_jobs = [scrapy(env, "status", "--job", job, "-L", "DEBUG") for job in ("bsky-follows", "bsky-search")]
        captured = monitor.stop()
        monitor = None

        # the crawl did what a user expects: follows and search equal truth, sessions expired and renewed
        truth = box.get(f"/_sandbox/truth/bsky/reachable?seeds={seed}&depth=2&direction=follows&max_users=30")["dids"]
        pages = bucket(output, "friend_ids")
        assert sorted(pages) == sorted(truth)
        for did in truth:
            assert [p["did"] for line in pages[did] for p in line["follows"]] == box.get(f"/_sandbox/truth/bsky/follows/{did}")["dids"]
        [search_pages] = bucket(output, "search").values()
        got = [p["uri"] for page in search_pages for p in page["posts"]]
        assert len(got) >= 1500 and got == truth_search[: len(got)]
        log = "\n".join(texts)
        # stats dumped, DEBUG on in both workers; the tokens expired in the proxied worker (the one with sessions)
        assert "'tweetform/bluesky/expired_tokens': " in texts[0] and all("DEBUG: Crawled (200)" in t for t in texts)
        counters = box.get("/_sandbox/bsky/counters")
        assert counters["sessions_created"] + counters["sessions_refreshed"] >= 2, counters
        vias = {row["alias"].split("|", 1)[1] for row in counters["lanes"]}
        assert "" in vias and any("tf-bsky-secret" in v for v in vias), vias  # one worker direct, one through the proxy
        assert box.counters()["statuses"].get("407", 0) == 0
        assert all(s.returncode == 0 for s in (status, *status_jobs)), [s.stderr[-1000:] for s in (status, *status_jobs)]
        assert b"bsky-search" in captured  # the jobs went through Redis

        tokens = box.get("/_sandbox/bsky/tokens")["tokens"]
        secrets = [*(a.app_password for a in accounts), *tokens, PROXY_PASSWORD, REDIS_PASSWORD]
        assert len(tokens) >= 4  # at least two sessions' access and refresh tokens to look for
        places = {
            "redis (MONITOR)": captured,
            "worker logs and stats": log.encode(),
            "push output": "".join(p.stdout + p.stderr for p in pushed).encode(),
            "status output": "".join(s.stdout + s.stderr for s in (status, *status_jobs)).encode(),
            "output files": written(output),
        }
        leaks = {where: canary_hits(data, secrets) for where, data in places.items()}
        assert leaks == {where: [] for where in places}, leaks
    finally:
        if monitor is not None:
            monitor.stop()
        for w in STARTED:
            if w.poll() is None:
                w.kill()
        proxy.stop()
        server.stop()
