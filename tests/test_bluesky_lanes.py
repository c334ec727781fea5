"""Bluesky limits per client IP: through two real proxies (tinyproxy processes, each with its own
``ViaProxyName``, so the sandbox tells their requests apart) a crawl has two lanes, each kept within
its limit in every window — as the host's ``ratelimit-*`` headers say, or, where it sends none, by
TWEETFORM_BLUESKY_RATE — both used, and its output equals the sandbox's truth."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import SMALL_WORLD
from crawling import bucket, run_crawl
from test_proxies import TinyProxy
from test_secrets_distributed import no_process_left_behind, start_worker, wait_done

from tweetform.quota.book import PACE_WINDOW, pace_slices

__all__ = ["no_process_left_behind"]  # its autouse fixture: no worker outlives a test


@pytest.fixture(scope="module")
def two_proxies() -> Iterator[tuple[TinyProxy, TinyProxy]]:
    a, b = TinyProxy("tf-lane-a").start(), TinyProxy("tf-lane-b").start()
    yield a, b
    a.stop()
    b.stop()


def crawl_through(box: Any, proxies: tuple[TinyProxy, TinyProxy], out: Path, rate: int, **args: Any) -> Any:
    settings = {"TWEETFORM_BLUESKY_APPVIEW": box.base, "TWEETFORM_BLUESKY_PDS": box.base, "TWEETFORM_API_BASE": "http://127.0.0.1:9",
                "ROTATING_PROXY_LIST": json.dumps([p.url() for p in proxies]), "TWEETFORM_BLUESKY_RATE": rate}
    return run_crawl(box, "friends", out, credentials=[], settings=settings, api="bluesky", **args)


def proxy_of(lane: str) -> str:
    """The proxy (its ViaProxyName) of one of the sandbox's per-IP lanes (``address|via``); "" if direct."""
    via = lane.split("|", 1)[1]
    return via.split()[1] if via else ""


def equals_truth(box: Any, out: Path, seed: str, depth: int, max_users: int) -> int:
    """The crawl's pages equal the truth; the number of pages (one request each)."""
    truth = box.get(f"/_sandbox/truth/bsky/reachable?seeds={seed}&depth={depth}&direction=follows&max_users={max_users}")["dids"]
    pages = bucket(out, "friend_ids")
    assert sorted(pages) == sorted(truth)
    for did in truth:
        assert [p["did"] for line in pages[did] for p in line["follows"]] == box.get(f"/_sandbox/truth/bsky/follows/{did}")["dids"]
    return sum(len(lines) for lines in pages.values())


def test_two_proxies_are_two_lanes_each_within_its_limit_by_headers_then_by_the_rate_setting(
        sandbox_factory: Any, two_proxies: tuple[TinyProxy, TinyProxy], tmp_path: Path) -> None:
    # 1. the host publishes its limit: 8 requests per 2-second window per IP (ratelimit-* headers)
    box = sandbox_factory(*SMALL_WORLD, "--bluesky", "rate=8", "--bluesky", "window=2")
    seed = box.get("/_sandbox/truth/bsky/accounts")[0]["did"]
    done = crawl_through(box, two_proxies, tmp_path / "headers", 4, user_id=seed, depth=2, max_users=40)  # headers win over 4
    assert done.returncode == 0, done.stderr[-3000:]
    pages = equals_truth(box, tmp_path / "headers", seed, 2, 40)
    lanes = {proxy_of(row["alias"]): row for row in box.get("/_sandbox/bsky/counters")["lanes"]}
    assert set(lanes) == {"tf-lane-a", "tf-lane-b"}  # both proxies, nothing direct
    for row in lanes.values():
        assert row["rate_limited"] == 0 and row["max_served_in_window"] <= 8, row  # never over a lane's limit
    windows = sum(len(row["windows"]) for row in lanes.values())
    assert sum(row["served"] for row in lanes.values()) == pages > 16 and windows >= 3  # it had to wait for windows
    assert {line["__tweetform"]["credential"] for lines in bucket(tmp_path / "headers", "friend_ids").values()
            for line in lines} == {f"ip:{p.address}" for p in two_proxies}

    # 2. the host publishes none: each lane paced by TWEETFORM_BLUESKY_RATE, in slices too small for one lane
    quiet = sandbox_factory(*SMALL_WORLD, "--bluesky", "ratelimit_headers=false")
    rate, per = paced_rate(pages)
    done = crawl_through(quiet, two_proxies, tmp_path / "paced", rate, user_id=seed, depth=2, max_users=40)
    assert done.returncode == 0, done.stderr[-3000:]
    assert equals_truth(quiet, tmp_path / "paced", seed, 2, 40) == pages
    counters = quiet.get("/_sandbox/bsky/counters")
    assert all(row["rate_limited"] == 0 for row in counters["lanes"])
    sent = {proxy_of(lane): times for lane, times in counters["served_at"].items()}
    print(f"pages {pages}; headers: {[(n, r['served'], len(r['windows'])) for n, r in sorted(lanes.items())]}; "
          f"paced at {rate} per 5 min ({per} per 30 s): {[(n, len(t)) for n, t in sorted(sent.items())]}")
    assert set(sent) == {"tf-lane-a", "tf-lane-b"}
    within_the_rate(sent, rate, per, pages)


def paced_rate(pages: int) -> tuple[int, int]:
    """A TWEETFORM_BLUESKY_RATE whose 30-s slices (quota.book.pace_slices) let one lane send only about
    60 % of the crawl's pages (it would wait for the next slice; two lanes do not), and that share."""
    per = pages * 3 // 5 + 1
    assert pace_slices(11 * per) == (per, 30)
    return 11 * per, per


def within_the_rate(sent: dict[str, list[float]], rate: int, per: int, pages: int) -> None:
    """Each lane's requests: at most ``rate`` in any 5 minutes (whenever they start), ``per`` in a slice."""
    for times in sent.values():
        assert max(sum(1 for t in times if start <= t < start + PACE_WINDOW) for start in times) <= rate
        slices = [int(t) // 30 for t in times]
        assert max(slices.count(s) for s in slices) <= per < pages, (slices, per)


def lanes_of_pages(out: Path) -> dict[str, list[str]]:
    """lane (the provenance's credential) -> when each of its pages was written."""
    found: dict[str, list[str]] = {}
    for lines in bucket(out, "friend_ids").values():
        for line in lines:
            found.setdefault(line["__tweetform"]["credential"], []).append(line["__tweetform"]["retrieved_at"])
    return found


def test_two_hosts_pace_their_own_direct_lane_and_hosts_behind_one_nat_share_one(
        sandbox_factory: Any, redis_url: str, tmp_path: Path) -> None:
    """Two real workers without proxies. Given one TWEETFORM_DIRECT_LANE (two hosts behind one NAT, as
    these two processes are: the sandbox sees one IP), they share one lane: together within the host's
    published limit, no 429. Given two names (two hosts, two IPs), each paces its own lane by
    TWEETFORM_BLUESKY_RATE: a job one lane would finish only in its next slice of it finishes now."""
    from datetime import datetime

    from test_distributed import push, worker_env

    box = sandbox_factory(*SMALL_WORLD, "--bluesky", "rate=8", "--bluesky", "window=2")
    seed = box.get("/_sandbox/truth/bsky/accounts")[0]["did"]

    def run(sandbox: Any, out: Path, job: str, names: tuple[str, str], rate: int, both: bool = False) -> list[str]:
        env = {**worker_env(sandbox, redis_url, out), "TWEETFORM_BLUESKY_APPVIEW": sandbox.base,
               "TWEETFORM_BLUESKY_PDS": sandbox.base, "TWEETFORM_BLUESKY_RATE": str(rate),
               "TWEETFORM_HEARTBEAT_TTL": "60"}  # a worker frozen by both_take_part is not taken for dead
        push(env, "friends", "--api", "bluesky", "--user-id", seed, "--depth", "2", "--max-users", "40", "--job", job)
        logs = [tmp_path / f"{job}-{n}.log" for n in range(len(names))]  # files: a full pipe would stall a worker
        workers = [start_worker({**env, "TWEETFORM_DIRECT_LANE": name}, log, "-s", "LOG_LEVEL=DEBUG")
                   for name, log in zip(names, logs)]
        if both:
            both_take_part(redis_url, workers, logs)
        return wait_done(workers, logs, timeout=200)

    # one NAT: one name, one limit (8 per 2 s, the host's headers) for both workers
    logs = run(box, tmp_path / "nat", "nat", ("lab-nat", "lab-nat"), 3000, both=True)
    pages = equals_truth(box, tmp_path / "nat", seed, 2, 40)
    assert set(lanes_of_pages(tmp_path / "nat")) == {"ip:direct:lab-nat"}
    assert all("Crawled (200)" in log for log in logs)  # both workers took part
    [row] = box.get("/_sandbox/bsky/counters")["lanes"]  # one client IP, as the sandbox sees it
    assert row["served"] >= pages > 16 and row["rate_limited"] == 0 and row["max_served_in_window"] <= 8, row

    # two hosts: two names, each its own TWEETFORM_BLUESKY_RATE (the host publishes no limit). Judged on a crawl that
    # began and ended in one 30-s slice: across a boundary one lane may rightly do it all (the first worker sends its
    # share, the slice ends before the second worker takes a page, and the first sends the rest in the next slice: the
    # second started ~0.3 s later in runs measured here, so about one run in 100). Such a crawl is run again as
    # another job on two fresh names (their own quota), just after the boundary, with a whole slice ahead.
    quiet = sandbox_factory(*SMALL_WORLD, "--bluesky", "ratelimit_headers=false")
    rate, per = paced_rate(pages)
    for attempt, names in enumerate((("host-a", "host-b"), ("host-c", "host-d"), ("host-e", "host-f"))):
        out = tmp_path / f"hosts{attempt}"
        run(quiet, out, f"hosts{attempt}", names, rate)
        assert equals_truth(quiet, out, seed, 2, 40) == pages
        sent = {lane: [datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp() for at in times]
                for lane, times in lanes_of_pages(out).items()}
        first, last = min(min(t) for t in sent.values()), max(max(t) for t in sent.values())
        if int(first - 1.0) // 30 == int(last) // 30:  # one slice (from a second before the first page: quota comes first)
            break
    else:
        raise AssertionError("three crawls in a row were cut by a 30-s slice boundary")
    assert set(sent) == {f"ip:direct:{name}" for name in names}
    within_the_rate(sent, rate, per, pages)


def both_take_part(redis_url: str, workers: list[subprocess.Popen], logs: list[Path]) -> None:
    """The worker that fetched a page first is frozen (SIGSTOP) until the other has fetched one too, then thawed.
    An idle worker looks for queues other workers filled at Scrapy's engine heartbeat (every 5 s): started
    together, one of them could take every window of a 6-s crawl before the other looked (1 run in 8 under load).
    It is frozen holding no request: a request in flight holds its share of the lane's window until answered."""
    import redis
    from test_distributed import holds_requests

    r = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 60

    def fetched(log: Path) -> bool:
        return "Crawled (200)" in log.read_text()

    while not any(fetched(log) for log in logs):
        assert time.monotonic() < deadline and all(w.poll() is None for w in workers), "no worker fetched a page"
        time.sleep(0.02)
    first = next(w for w, log in zip(workers, logs) if fetched(log))
    while not all(fetched(log) for log in logs):
        assert time.monotonic() < deadline and all(w.poll() is None for w in workers), "the second worker took no page"
        if holds_requests(r, first.pid):  # its window's requests: wait until they are answered (the next window is 2 s off)
            time.sleep(0.01)
            continue
        first.send_signal(signal.SIGSTOP)
        try:
            if holds_requests(r, first.pid):  # it took one between the look and the stop: thaw, look again
                continue
            while not all(fetched(log) for log in logs):
                assert time.monotonic() < deadline, "the second worker took no page while the first was frozen"
                time.sleep(0.02)
        finally:
            first.send_signal(signal.SIGCONT)


def test_a_dead_proxys_lane_sits_out_and_the_live_one_finishes_the_crawl(
        sandbox_factory: Any, two_proxies: tuple[TinyProxy, TinyProxy], tmp_path: Path) -> None:
    """The proxy pool applies to IP lanes: a proxy nobody answers on is dead, its lane (pinned to it)
    sits out, its requests go back to the queue for the live lane; nothing goes direct, nothing is lost."""
    from crawling import FULL_LOG
    from test_proxies import stats_of

    from tweetform.testing.servers import free_port

    box = sandbox_factory(*SMALL_WORLD, "--bluesky", "rate=8", "--bluesky", "window=2")
    seed = box.get("/_sandbox/truth/bsky/accounts")[0]["did"]
    dead = f"127.0.0.1:{free_port()}"  # nothing listens here
    settings = {**FULL_LOG, "TWEETFORM_BLUESKY_APPVIEW": box.base, "TWEETFORM_BLUESKY_PDS": box.base,
                "TWEETFORM_API_BASE": "http://127.0.0.1:9", "ROTATING_PROXY_LIST": json.dumps([two_proxies[0].url(), f"http://{dead}"]),
                "ROTATING_PROXY_BACKOFF_BASE": "86400", "ROTATING_PROXY_BACKOFF_CAP": "86400",
                "TWEETFORM_RETRY_BACKOFF": "0.05", "TWEETFORM_RETRY_BACKOFF_MAX": "0.2"}
    done = run_crawl(box, "friends", tmp_path, credentials=[], settings=settings, api="bluesky", user_id=seed, depth=2, max_users=40)
    assert done.returncode == 0, done.stderr[-3000:]
    pages = equals_truth(box, tmp_path, seed, 2, 40)
    assert f"credential 'ip:{dead}' sits out: every proxy it is pinned to is dead" in done.stderr
    assert stats_of(done.stderr).get(f"tweetform/proxies/held/ip:{dead}") == 1
    [row] = box.get("/_sandbox/bsky/counters")["lanes"]
    assert proxy_of(row["alias"]) == "tf-lane-a" and row["served"] == pages and row["rate_limited"] == 0
    assert {line["__tweetform"]["credential"] for lines in bucket(tmp_path, "friend_ids").values() for line in lines} == {
        f"ip:{two_proxies[0].address}"}
