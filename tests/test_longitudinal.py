"""Longitudinal collection: the same timelines and follow lists crawled again into one
directory by a later job, while the sandbox's world moves on (its logical clock).

Every later job's pages are written (a page's identity includes its job) and equal
the truth at the time of that crawl; ``scrapy export diff`` lists the follow edges
the world added and removed; ``since_id=auto`` fetches only the new tweets; a writer
killed between a write and its record leaves each page once; ``scrapy archive
--every`` beside a running crawl loses nothing.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from crawling import FULL_LOG, ROOT, bucket, crawl_env, ids_of, run_crawl

from tweetform.export.files import bucket_files, iter_lines, iter_pages
from tweetform.manifest import read_manifest

WEEK = 7 * 86400
# timelines take a few pages each, at one page a second per credential lane: the archiver gets time to run
SLOW_TIMELINES = ("--users", "3000", "--seed", "7", "--window", "1", "--limit", "/2/users/:id/tweets=1")


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def scrapy(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scrapy", *args], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)


def by_job(lines: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        out[line["__tweetform"]["job"]].append(line)
    return out


def set_clock(box: Any, offset: float) -> None:
    box.post("/_sandbox/clock", {"offset": offset})


def changing_account(box: Any) -> int:
    """An account whose friends list both gains and loses someone within a week (deterministic world)."""
    ex = box.get("/_sandbox/examples")
    candidates = ex["ordinary"] + ex["many_friends"]
    for seed in list(candidates):
        candidates += box.truth("following", seed)[:20]
    for uid in candidates:
        before = set(box.truth("following", uid))
        set_clock(box, WEEK)
        after = set(box.truth("following", uid))
        set_clock(box, 0)
        if before - after and after - before and len(after) < 1000:
            return uid
    pytest.fail("the sandbox world did not change any friends list in a week")


def test_a_later_job_writes_its_own_pages_equal_to_the_changed_truth(sandbox, tmp_path: Path):
    box = sandbox
    ex = box.get("/_sandbox/examples")
    friend, tweeter = changing_account(box), ex["ordinary"][2]
    truth = {0: (box.truth("following", friend), box.truth("timeline", tweeter))}
    ok(run_crawl(box, "friends", tmp_path, user_id=friend, job="net-week1"))
    ok(run_crawl(box, "timeline", tmp_path, user_id=tweeter, job="tl-week1"))
    set_clock(box, WEEK)
    truth[1] = (box.truth("following", friend), box.truth("timeline", tweeter))
    assert truth[1] != truth[0]  # the world moved on: new follows, lost follows, new tweets
    ok(run_crawl(box, "friends", tmp_path, user_id=friend, job="net-week2"))
    ok(run_crawl(box, "timeline", tmp_path, user_id=tweeter, job="tl-week2"))

    lists = by_job(bucket(tmp_path, "friend_ids")[str(friend)])
    tweets = by_job(bucket(tmp_path, "timelines")[str(tweeter)])
    assert sorted(lists) == ["net-week1", "net-week2"] and sorted(tweets) == ["tl-week1", "tl-week2"]
    assert ids_of(lists["net-week1"]) == truth[0][0] and ids_of(lists["net-week2"]) == truth[1][0]
    assert ids_of(tweets["tl-week1"]) == truth[0][1] and ids_of(tweets["tl-week2"]) == truth[1][1]
    # every page once per job; the first pages of both jobs have the same URL
    assert lists["net-week1"][0]["__tweetform"]["url"] == lists["net-week2"][0]["__tweetform"]["url"]
    for lines in (*lists.values(), *tweets.values()):
        assert len({p["__tweetform"]["page_id"] for p in lines}) == len(lines)

    # readers: every job by default, --job for one
    out = tmp_path / "exports"
    out.mkdir()
    ok(scrapy("export", "graph", "--bucket", "friend_ids", "--format", "csv", "-o", str(out / "w2.csv"), "--job", "net-week2",
              "--data", str(tmp_path)))
    assert set((out / "w2.csv").read_text().splitlines()[1:]) == {f"{friend},{t}" for t in truth[1][0]}
    ok(scrapy("export", "graph", "--bucket", "friend_ids", "--format", "csv", "-o", str(out / "all.csv"), "--data", str(tmp_path)))
    assert set((out / "all.csv").read_text().splitlines()[1:]) == {f"{friend},{t}" for t in set(truth[0][0]) | set(truth[1][0])}
    missing = scrapy("export", "tweets", "--bucket", "timelines", "-o", str(out / "t.csv"), "--job", "nope", "--data", str(tmp_path))
    assert missing.returncode == 2 and missing.stderr.strip() == "tweetform: no pages of job 'nope' in the files read"

    # the edges the world added and removed in between, against the truth of both times
    result = ok(scrapy("export", "diff", "net-week1", "net-week2", "-o", str(out / "diff.csv"), "--data", str(tmp_path)))
    with open(out / "diff.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["change"], r["source"], r["target"]) for r in rows} == (
        {("added", str(friend), str(t)) for t in set(truth[1][0]) - set(truth[0][0])}
        | {("removed", str(friend), str(t)) for t in set(truth[0][0]) - set(truth[1][0])})
    added = len(set(truth[1][0]) - set(truth[0][0]))
    removed = len(set(truth[0][0]) - set(truth[1][0]))
    assert result.stderr.strip().startswith(f"net-week1 → net-week2: {added} edge{'' if added == 1 else 's'} added, {removed} removed")
    assert result.stderr.count("\n") == 1
    on_stdout = ok(scrapy("export", "diff", "net-week1", "net-week2", "--data", str(tmp_path)))
    assert on_stdout.stdout == (out / "diff.csv").read_text()

    # a manifest per job beside the data, which exports ignore
    manifest = read_manifest(tmp_path, "net-week2")
    assert manifest is not None and manifest["state"] == "finished" and manifest["spider"] == "friends"
    assert manifest["arguments"]["user_ids"] == [friend] and manifest["bucket"] == "friend_ids"
    assert manifest["pages"] == len(lists["net-week2"]) and manifest["errors"] == 0 and manifest["failed_pages"] == 0
    assert manifest["last_complete_level"] == 1 and manifest["started"] <= manifest["ended"]
    assert read_manifest(tmp_path, "tl-week1")["pages"] == len(tweets["tl-week1"])
    assert sorted(p.name for p in (tmp_path / "_jobs").glob("*.json")) == ["net-week1.json", "net-week2.json", "tl-week1.json", "tl-week2.json"]
    assert sorted(p.name for p in (tmp_path / "_jobs").iterdir() if p.is_dir()) == ["net-week1", "net-week2", "tl-week1", "tl-week2"]  # their queues


@pytest.mark.parametrize("api", ["2", "1.1"])
def test_since_id_auto_fetches_only_new_tweets(sandbox, tmp_path: Path, api: str):
    box = sandbox
    ex = box.get("/_sandbox/examples")
    users = [ex["ordinary"][2], ex["many_friends"][0]]
    ok(run_crawl(box, "timeline", tmp_path, user_id=",".join(map(str, users)), job="tl-1", api=api))
    before = {u: box.truth("timeline", u) for u in users}
    set_clock(box, WEEK)
    box.post("/_sandbox/billing/reset")
    served_before = box.counters()["statuses"].get("200", 0)
    now = {u: box.truth("timeline", u) for u in users}
    new = {u: [t for t in now[u] if t > max(before[u])] for u in users}
    assert all(new.values())  # each user tweeted meanwhile
    ok(run_crawl(box, "timeline", tmp_path, user_id=",".join(map(str, users)), job="tl-2", since_id="auto", api=api))

    pages = bucket(tmp_path, "timelines")
    for u in users:
        jobs = by_job(pages[str(u)])
        assert ids_of(jobs["tl-2"]) == new[u]  # only the tweets after the newest one collected before
        assert ids_of(jobs["tl-1"]) == before[u]
        assert all(f"since_id={max(before[u])}" in p["__tweetform"]["url"] for p in jobs["tl-2"])
    # fetched (and paid for) only the new tweets: one page each here, the old ones not again
    assert box.counters()["statuses"]["200"] - served_before == sum(len(by_job(pages[str(u)])["tl-2"]) for u in users)
    billed = sum(a["resources"].get("post", 0) for a in box.get("/_sandbox/billing")["apps"].values())
    # Post reads billed: the new tweets, plus (v2) the tweets they reply to, quote or retweet that
    # arrive as includes.tweets (the evolving world's new tweets react to others), once a day each
    # (the data above is exactly the new tweets: the old ones were not fetched again)
    paid = {int(t) for u in users for t in ids_of(by_job(pages[str(u)])["tl-2"])}
    paid |= {int(t["id"]) for u in users for p in by_job(pages[str(u)])["tl-2"] for t in (p.get("includes") or {}).get("tweets", [])}
    assert billed == len(paid)
    assert read_manifest(tmp_path, "tl-2")["arguments"]["since_ids"] == ",".join(f"{u}:{max(before[u])}" for u in users)

    # a third job, seeded by screen name (resolved once the id is known), with nothing new: nothing old either
    name = box.get(f"/_sandbox/truth/user/{users[0]}")["screen_name"]
    ok(run_crawl(box, "timeline", tmp_path, screen_name=name, job="tl-3", since_id="auto", api=api))
    third = by_job(bucket(tmp_path, "timelines")[str(users[0])])["tl-3"]
    assert ids_of(third) == [] and all(f"since_id={max(now[users[0]])}" in p["__tweetform"]["url"] for p in third)


def test_push_resolves_since_id_auto_into_the_job_message(sandbox, redis_url, tmp_path: Path):
    """``scrapy push`` resolves since_id=auto from its own output directory; a worker whose
    directory holds nothing then collects only the new tweets."""
    import redis as redis_lib

    from tweetform.state.redis import keys

    box = sandbox
    user = box.get("/_sandbox/examples")["many_friends"][0]  # a week's new tweets fit one page
    here, there = tmp_path / "here", tmp_path / "there"
    ok(run_crawl(box, "timeline", here, user_id=user, job="tl-1"))
    newest = max(box.truth("timeline", user))
    set_clock(box, WEEK)
    new = [t for t in box.truth("timeline", user) if t > newest]
    env = {**crawl_env(box, here), "REDIS_URL": redis_url}
    ok(scrapy("push", "timeline", "--user-id", str(user), "--since-id", "auto", "--job", "tl-2", env=env))
    messages = [json.loads(m) for m in redis_lib.Redis.from_url(redis_url).lrange(keys.jobs_inbox("timeline"), 0, -1)]
    assert [m.get("since_ids") for m in messages] == [f"{user}:{newest}"]

    worker_env = {**crawl_env(box, there), "REDIS_URL": redis_url, "TWEETFORM_HEARTBEAT": "0.3", "TWEETFORM_HEARTBEAT_TTL": "1.5"}
    worker = subprocess.run([sys.executable, "-m", "scrapy", "worker", "--spiders", "timeline", "-s", "TWEETFORM_EXIT_WHEN_IDLE=1"],
                            cwd=ROOT, env=worker_env, capture_output=True, text=True, timeout=120)
    assert worker.returncode == 0, worker.stderr[-3000:]
    pages = bucket(there, "timelines")[str(user)]
    assert ids_of(pages) == new and {p["__tweetform"]["job"] for p in pages} == {"tl-2"}


def written_lines(output: Path, name: str) -> dict[str, list[dict[str, Any]]]:
    """key -> every line of ``<output>/<name>/<key>.jsonl[.gz]``, duplicates kept."""
    folder = output / name
    out: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(folder.iterdir()) if folder.is_dir() else ():
        key = path.name.split(".jsonl")[0]
        out[key] = [json.loads(line) for _, line in iter_lines(path)]
    return out


@pytest.mark.parametrize("compress", [False, True], ids=["jsonl", "gzip"])
def test_a_writer_killed_between_write_and_record_leaves_each_page_once(sandbox, tmp_path: Path, compress: bool):
    """The second job's writer is SIGKILLed right after a page reached its file; the job run
    again with the same id writes every other page, none twice, and the first job's stay."""
    box = sandbox
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    args = {"user_id": seed, "depth": 2, "max_users": 8}
    settings = {"TWEETFORM_OUTPUT_COMPRESS": str(compress)}
    ok(run_crawl(box, "friends", tmp_path, job="week1", settings=settings, **args))
    first = written_lines(tmp_path, "friend_ids")
    env = {**crawl_env(box, tmp_path), "PYTHONPATH": str(ROOT / "tests"), "TWEETFORM_TEST_KILL_AFTER_WRITES": "4"}
    cmd = [sys.executable, "-m", "scrapy", "crawl", "friends", "-a", "job=week2", "-s", f"TWEETFORM_OUTPUT_COMPRESS={compress}", "-s",
           'ITEM_PIPELINES={"kill_after_write.KillAfterWritePipeline": 500}'] + [a for k, v in args.items() for a in ("-a", f"{k}={v}")]
    killed = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    written = [p for name in ("friend_ids", "errors") for v in written_lines(tmp_path, name).values() for p in by_job(v).get("week2", [])]
    assert len(written) == 4
    assert read_manifest(tmp_path, "week2")["state"] == "running"  # the killed run never ended
    ok(run_crawl(box, "friends", tmp_path, job="week2", settings=settings, **args))

    pages = written_lines(tmp_path, "friend_ids")
    assert pages.keys() == first.keys()
    for key, lines in pages.items():
        jobs = by_job(lines)
        assert jobs["week1"] == first[key]  # the first job's pages untouched
        assert ids_of(jobs["week2"]) == box.truth("following", int(key)), key
        assert len({p["__tweetform"]["page_id"] for p in jobs["week2"]}) == len(jobs["week2"])
    errors = by_job(written_lines(tmp_path, "errors")["week2"])["week2"]  # the protected account, once
    assert [e["reason"] for e in errors] == ["protected"]
    manifest = read_manifest(tmp_path, "week2")
    assert [r["state"] for r in manifest["runs"]] == ["running", "finished"] and manifest["state"] == "finished"
    # max_users=8 expanded the seed and 7 of the accounts it lists: level 2 was cut short by the cap, level 1 is complete
    assert manifest["last_complete_level"] == 1 and read_manifest(tmp_path, "week1")["last_complete_level"] == 1


def test_archive_every_beside_a_running_crawl_loses_no_page(sandbox_factory, tmp_path: Path):
    box = sandbox_factory(*SLOW_TIMELINES)
    ex = box.get("/_sandbox/examples")
    users = [ex["ordinary"][2], ex["many_friends"][0], ex["many_friends"][1]]
    ok(run_crawl(box, "friends", tmp_path, user_id=ex["ordinary"][0], job="earlier"))  # files no writer holds
    archiver = subprocess.Popen([sys.executable, "-m", "scrapy", "archive", "--every", "0.005", "--older-than", "0",
                                 "--data", str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while list((tmp_path / "friend_ids").glob("*.jsonl")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert list((tmp_path / "friend_ids").glob("*.tar.gz"))  # the archiver is at work
        crawl = ok(run_crawl(box, "timeline", tmp_path, user_id=",".join(map(str, users)), job="now", settings=FULL_LOG))
        assert "tweetform/pages/written" in crawl.stderr
        time.sleep(1.0)  # a round after the crawl let go of its files
    finally:
        archiver.send_signal(signal.SIGTERM)
        out, err = archiver.communicate(timeout=30)
    assert archiver.returncode == 0, err[-2000:]
    assert list((tmp_path / "timelines").glob("*.tar.gz")), out
    assert "a running crawl holds open" in out  # it met the crawl's files while they were being written

    pages = list(iter_pages(bucket_files(tmp_path, "timelines")))
    for u in users:
        mine = [p for p in pages if p["__tweetform"]["key"] == str(u)]
        assert sorted(ids_of(mine), reverse=True) == box.truth("timeline", u), u
        assert len(ids_of(mine)) == len(set(ids_of(mine)))
        assert len(mine) >= 2  # several pages, written while the archiver ran
    friends = list(iter_pages(bucket_files(tmp_path, "friend_ids")))
    assert ids_of(friends) == box.truth("following", ex["ordinary"][0])
    assert os.listdir(tmp_path / "_jobs")  # manifests are not a bucket: never archived
    assert not list((tmp_path / "_jobs").glob("*.tar.gz"))
