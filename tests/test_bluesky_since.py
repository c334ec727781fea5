"""``timeline -a api=bluesky -a since_id=auto``: after the sandbox's clock moves, a second job writes
exactly the feed entries that are new (the face's truth), by ``scrapy crawl`` and through ``scrapy push``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from crawling import ROOT, bucket, crawl_env
from test_bluesky_crawl import bluesky_crawl
from test_longitudinal import WEEK, by_job, ok, scrapy, set_clock

from tweetform import exitcodes
from tweetform.manifest import read_manifest


def entries(pages: list[dict[str, Any]]) -> list[str]:
    """Feed entries in page order: a post's URI, a repost's repost URI."""
    return [item["reason"]["uri"] if "reason" in item else item["post"]["uri"] for page in pages for item in page["feed"]]


def truth(box: Any, did: str) -> list[str]:
    return [t["repost"] or t["uri"] for t in box.get(f"/_sandbox/truth/bsky/feed/{did}")["items"]]


def test_since_id_auto_writes_only_the_new_posts(sandbox: Any, tmp_path: Path) -> None:
    box = sandbox
    set_clock(box, 0)
    accounts = box.get("/_sandbox/truth/bsky/accounts")
    dids = [accounts[0]["did"], accounts[2]["did"]]  # in a week: ~110 new entries (two pages), ~20 (one)
    ok(bluesky_crawl(box, "timeline", tmp_path, user_id=",".join(dids), job="bt-1"))
    before = {d: truth(box, d) for d in dids}
    set_clock(box, WEEK)
    now = {d: truth(box, d) for d in dids}
    new = {d: now[d][: now[d].index(before[d][0])] for d in dids}  # the feed is newest first
    assert all(new.values()) and all(now[d][len(new[d]):][:50] == before[d][:50] for d in dids)
    served = box.get("/_sandbox/bsky/counters")["lanes"]
    ok(bluesky_crawl(box, "timeline", tmp_path, user_id=",".join(dids), job="bt-2", since_id="auto"))

    pages = bucket(tmp_path, "timelines")
    for d in dids:
        jobs = by_job(pages[d])
        assert entries(jobs["bt-2"]) == new[d]  # exactly the new entries, none of the old ones again
        assert entries(jobs["bt-1"]) == before[d]
        # paging stopped at the first page reaching a known entry
        assert len(jobs["bt-2"]) <= len(new[d]) // 100 + 2
        assert all(p["__tweetform"]["since"] for p in jobs["bt-2"])
    assert len(by_job(pages[dids[0]])["bt-2"]) >= 2  # the stop found on a later page, not only the first
    requests = sum(c["served"] for c in box.get("/_sandbox/bsky/counters")["lanes"]) - sum(c["served"] for c in served)
    assert requests == sum(len(by_job(pages[d])["bt-2"]) for d in dids)  # no page fetched but those written
    since_ids = read_manifest(tmp_path, "bt-2")["arguments"]["since_ids"]
    assert [part.split("@")[0] for part in since_ids.split(",")] == dids

    # a third job by handle (resolved through the API, then looked up), nothing new meanwhile: nothing written but the empty page
    ok(bluesky_crawl(box, "timeline", tmp_path, screen_name=accounts[0]["handle"], job="bt-3", since_id="auto"))
    third = by_job(bucket(tmp_path, "timelines")[dids[0]])["bt-3"]
    assert entries(third) == [] and len(third) == 1
    set_clock(box, 0)


def test_push_resolves_bluesky_since_id_auto(sandbox: Any, redis_url: str, tmp_path: Path) -> None:
    """``scrapy push`` resolves since_id=auto from its own output directory into DID@time; a worker whose
    directory holds nothing then writes only the new entries."""
    import redis as redis_lib

    from tweetform.state.redis import keys

    box = sandbox
    set_clock(box, 0)
    did = box.get("/_sandbox/truth/bsky/accounts")[2]["did"]
    here, there = tmp_path / "here", tmp_path / "there"
    ok(bluesky_crawl(box, "timeline", here, user_id=did, job="bt-1"))
    before = truth(box, did)
    set_clock(box, WEEK)
    now = truth(box, did)
    new = now[: now.index(before[0])]
    assert new
    hosts = {"TWEETFORM_BLUESKY_APPVIEW": box.base, "TWEETFORM_BLUESKY_PDS": box.base}
    env = {**crawl_env(box, here), **hosts, "REDIS_URL": redis_url}
    ok(scrapy("push", "timeline", "--api", "bluesky", "--user-id", did, "--since-id", "auto", "--job", "bt-2", env=env))
    messages = [json.loads(m) for m in redis_lib.Redis.from_url(redis_url).lrange(keys.jobs_inbox("timeline"), 0, -1)]
    [message] = messages
    assert message["since_ids"].startswith(f"{did}@") and message["since_ids"] != f"{did}@0"

    worker_env = {**crawl_env(box, there), **hosts, "REDIS_URL": redis_url, "TWEETFORM_HEARTBEAT": "0.3",
                  "TWEETFORM_HEARTBEAT_TTL": "1.5"}
    worker = subprocess.run([sys.executable, "-m", "scrapy", "worker", "--spiders", "timeline", "-s", "TWEETFORM_EXIT_WHEN_IDLE=1"],
                            cwd=ROOT, env=worker_env, capture_output=True, text=True, timeout=120)
    assert worker.returncode == 0, worker.stderr[-3000:]
    pages = bucket(there, "timelines")[did]
    assert entries(pages) == new and {p["__tweetform"]["job"] for p in pages} == {"bt-2"}
    set_clock(box, 0)


def test_bluesky_since_id_takes_auto_only(sandbox: Any, tmp_path: Path) -> None:
    did = sandbox.get("/_sandbox/truth/bsky/accounts")[0]["did"]
    for args, expected in (({"since_id": "123"}, "since_id takes auto only with api=bluesky"),
                           ({"since_ids": f"{did}@yesterday"}, "since_ids must be DID@time pairs")):
        done = bluesky_crawl(sandbox, "timeline", tmp_path / "out", user_id=did, **args)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == exitcodes.BAD_INPUT and len(lines) == 1 and expected in lines[0], done.stderr[-2000:]
    assert not (tmp_path / "out").exists()
