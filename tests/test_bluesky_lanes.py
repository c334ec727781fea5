"""Bluesky limits per client IP: through two real proxies (tinyproxy processes, each with its own
``ViaProxyName``, so the sandbox tells their requests apart) a crawl has two lanes, each kept within
its limit in every window — as the host's ``ratelimit-*`` headers say, or, where it sends none, by
TWEETFORM_BLUESKY_RATE — both used, and its output equals the sandbox's truth."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import SMALL_WORLD
from crawling import bucket, run_crawl
from test_proxies import TinyProxy

from tweetform.quota.book import PACE_WINDOW


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

    # 2. the host publishes none: each lane paced by TWEETFORM_BLUESKY_RATE per 5 minutes, too few for one lane
    quiet = sandbox_factory(*SMALL_WORLD, "--bluesky", "ratelimit_headers=false")
    rate = pages * 3 // 5 + 1  # one lane would wait for the next 5-minute window; two lanes suffice
    done = crawl_through(quiet, two_proxies, tmp_path / "paced", rate, user_id=seed, depth=2, max_users=40)
    assert done.returncode == 0, done.stderr[-3000:]
    assert equals_truth(quiet, tmp_path / "paced", seed, 2, 40) == pages
    counters = quiet.get("/_sandbox/bsky/counters")
    assert all(row["rate_limited"] == 0 for row in counters["lanes"])
    per_window: dict[tuple[str, int], int] = {}
    for lane, times in counters["served_at"].items():
        for t in times:
            key = (proxy_of(lane), math.floor(t) // PACE_WINDOW)
            per_window[key] = per_window.get(key, 0) + 1
    print(f"pages {pages}; headers: {[(n, r['served'], len(r['windows'])) for n, r in sorted(lanes.items())]}; "
          f"paced at {rate} per 5 min: {sorted(per_window.items())}")
    assert {name for name, _ in per_window} == {"tf-lane-a", "tf-lane-b"}
    assert max(per_window.values()) <= rate < pages, (per_window, rate)
