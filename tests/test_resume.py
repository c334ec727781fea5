"""Resume a local job with ``-s JOBDIR=…``: stopped (SIGINT) or killed (SIGKILL) and started
again with the same command, it goes on where it stopped — output equals ground truth and
the sandbox's counters show that no completed page was fetched (paid for) again."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from crawling import ROOT, bucket, crawl_env, errors_of, ids_of, run_crawl

# slow pages and few slots, so an interruption lands mid-crawl
WORLD = ("--users", "3000", "--seed", "7", "--window", "1", "--latency", "0.15")
SLOTS = 4
SLOW = {"CONCURRENT_REQUESTS": str(SLOTS), "CONCURRENT_REQUESTS_PER_DOMAIN": str(SLOTS)}


@pytest.fixture
def box(sandbox_factory):
    return sandbox_factory(*WORLD)


def crawl_cmd(spider: str, jobdir: Path, settings: dict[str, str], args: dict[str, Any]) -> list[str]:
    cmd = [sys.executable, "-m", "scrapy", "crawl", spider, "-L", "INFO", "-s", f"JOBDIR={jobdir}"]
    for name, value in settings.items():
        cmd += ["-s", f"{name}={value}"]
    for name, value in args.items():
        cmd += ["-a", f"{name}={value}"]
    return cmd


def lines_on_disk(output: Path, name: str) -> int:
    folder = output / name
    return sum(p.read_bytes().count(b"\n") for p in folder.glob("*.jsonl")) if folder.is_dir() else 0


def interrupted(box: Any, output: Path, jobdir: Path, spider: str, name: str, after: int, sig: int, **args: Any) -> str:
    """Start a crawl, send ``sig`` once ``after`` pages are written, return its log."""
    log = output.parent / f"{output.name}-{sig}.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(crawl_cmd(spider, jobdir, SLOW, args), cwd=ROOT, env=crawl_env(box, output),
                                stdout=fh, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while lines_on_disk(output, name) < after and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "the crawl ended before it could be interrupted: " + log.read_text()[-2000:]
        proc.send_signal(sig)
        proc.wait(120)
    return log.read_text()


def resumed(box: Any, output: Path, jobdir: Path, spider: str, **args: Any) -> subprocess.CompletedProcess:
    result = run_crawl(box, spider, output, settings={"JOBDIR": str(jobdir), **SLOW}, **args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "IgnoreRequest" not in result.stderr and "is gone" not in result.stderr
    return result


def job_ids(log: str) -> set[str]:
    return set(re.findall(r"\[tweetform\.spiders\.base\] INFO: job (\S+): ", log))


def network_equals_truth(box: Any, output: Path, seed: int, depth: int) -> int:
    """Asserts the crawl's friends network is the sandbox's; returns how many pages and error records it wrote."""
    expected = box.get(f"/_sandbox/truth/reachable?seeds={seed}&depth={depth}&direction=friends")["ids"]
    pages = bucket(output, "friend_ids")
    errors = errors_of(output)
    protected = {k for k, v in errors.items() if v == "protected"}
    assert set(pages) | protected == {str(u) for u in expected}
    assert set(errors.values()) <= {"protected"}, errors
    written = []
    for key, lines in pages.items():
        assert ids_of(lines) == box.truth("following", int(key)), key
        written += [line["__tweetform"]["page_id"] for line in lines]
    assert len(written) == len(set(written)), "a page was written twice"
    return len(written) + sum(len(v) for v in bucket(output, "errors").values())


def saved_state(jobdir: Path) -> tuple[str, str, float | None]:
    """The job, its state and finished_at as the JOBDIR holds them."""
    with closing(sqlite3.connect(jobdir / "tweetform.sqlite")) as db:
        return db.execute("SELECT job, state, finished_at FROM jobs").fetchone()


def fetched(box: Any, endpoint: str = "/2/users/:id/following") -> int:
    """Requests the sandbox answered for one endpoint (other calls, e.g. the plan's look-up, aside)."""
    return sum(c["served"] + c["rate_limited"] for c in box.counters()["limits"] if c["endpoint"] == endpoint)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_depth3_network_resumes_without_fetching_a_completed_page_again(box, tmp_path: Path, sig: int):
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    out, jobdir = tmp_path / "out", tmp_path / "job"
    first = interrupted(box, out, jobdir, "friends", "friend_ids", 40, sig, user_id=seed, depth=3)
    done_before = lines_on_disk(out, "friend_ids")
    assert 40 <= done_before < 150  # stopped mid-crawl (the network has ~190 pages)
    assert saved_state(jobdir)[1:] == ("running", None)
    second = resumed(box, out, jobdir, "friends", user_id=seed, depth=3)
    assert job_ids(second.stderr) == job_ids(first) and len(job_ids(first)) == 1  # the same job, continued
    job_id, state, finished_at = saved_state(jobdir)
    assert {job_id} == job_ids(first) and state == "done" and finished_at is not None
    distinct = network_equals_truth(box, out, seed, 3)
    again = fetched(box) - distinct  # pages (and error answers) fetched more than once
    if sig == signal.SIGINT:
        assert again == 0  # stopped cleanly: what was in flight finished before it exited
    else:
        assert 0 <= again <= SLOTS  # killed: only what was in flight


def test_max_users_crawl_killed_mid_level_resumes_with_the_first_n_users_in_bfs_order(box, tmp_path: Path):
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    out, jobdir = tmp_path / "out", tmp_path / "job"
    interrupted(box, out, jobdir, "friends", "friend_ids", 25, signal.SIGKILL, user_id=seed, depth=3, max_users=80)
    assert lines_on_disk(out, "friend_ids") < 80
    resumed(box, out, jobdir, "friends", user_id=seed, depth=3, max_users=80)
    expected = box.get(f"/_sandbox/truth/reachable?seeds={seed}&depth=3&direction=friends&max_users=80")["ids"]
    pages = bucket(out, "friend_ids")
    protected = {k for k, v in errors_of(out).items() if v == "protected"}
    assert set(pages) | protected == {str(u) for u in expected}
    written = [line["__tweetform"]["page_id"] for lines in pages.values() for line in lines]
    assert len(written) == len(set(written))
    for key, lines in pages.items():
        assert ids_of(lines) == box.truth("following", int(key)), key
    assert fetched(box) - len(written) - len(protected) <= SLOTS


def test_other_arguments_for_a_jobdir_exit_2_with_one_line(box, tmp_path: Path):
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    out, jobdir = tmp_path / "out", tmp_path / "job"
    resumed(box, out, jobdir, "friends", user_id=seed, depth=1)
    before, written = fetched(box), lines_on_disk(out, "friend_ids")
    for changed in ({"user_id": seed, "depth": 2}, {"user_id": seed + 1, "depth": 1}, {"user_id": seed, "depth": 1, "job": "other"}):
        result = run_crawl(box, "friends", out, settings={"JOBDIR": str(jobdir)}, **changed)
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()) == 1 and "JOBDIR" in result.stderr, result.stderr
    again = run_crawl(box, "followers", out, settings={"JOBDIR": str(jobdir)}, user_id=seed)
    assert again.returncode == 2 and "spider was friends, now followers" in again.stderr
    assert fetched(box) == before and lines_on_disk(out, "friend_ids") == written
    # the same command goes on (here: nothing left to do, nothing fetched)
    resumed(box, out, jobdir, "friends", user_id=seed, depth=1)
    assert fetched(box) == before


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_timeline_resumes(box, tmp_path: Path, sig: int):
    uid = box.get("/_sandbox/examples")["long_timeline"][0]
    out, jobdir = tmp_path / "out", tmp_path / "job"
    interrupted(box, out, jobdir, "timeline", "timelines", 8, sig, user_id=uid)
    assert lines_on_disk(out, "timelines") < 32
    resumed(box, out, jobdir, "timeline", user_id=uid)
    pages = bucket(out, "timelines")[str(uid)]
    assert ids_of(pages) == box.get(f"/_sandbox/truth/timeline/{uid}")["ids"][:3200]
    assert len({p["__tweetform"]["page_id"] for p in pages}) == len(pages)
    # one page at a time: a kill may cost the page in flight, a clean stop nothing
    assert fetched(box, "/2/users/:id/tweets") - len(pages) <= (0 if sig == signal.SIGINT else 1)


def test_search_killed_mid_pagination_resumes(box, tmp_path: Path):
    truth = box.get("/_sandbox/truth/search?query=data")["ids"]
    out, jobdir = tmp_path / "out", tmp_path / "job"
    interrupted(box, out, jobdir, "search", "search", 10, signal.SIGKILL, query="data")
    assert lines_on_disk(out, "search") < len(truth) // 100
    resumed(box, out, jobdir, "search", query="data")
    (pages,) = bucket(out, "search").values()
    assert ids_of(pages) == truth
    assert len({p["__tweetform"]["page_id"] for p in pages}) == len(pages)
    assert fetched(box, "/2/tweets/search/recent") - len(pages) <= 1  # one page at a time: at most the one in flight


def test_jobdir_is_ignored_with_redis_url(box, redis_url: str, tmp_path: Path):
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    out, jobdir = tmp_path / "out", tmp_path / "job"
    env = {**crawl_env(box, out), "REDIS_URL": redis_url}
    log = tmp_path / "crawl.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(crawl_cmd("friends", jobdir, {}, {"user_id": seed, "depth": 2}), cwd=ROOT, env=env,
                                stdout=fh, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while lines_on_disk(out, "friend_ids") < 1 and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            proc.kill()
            proc.wait(30)
    text = log.read_text()
    assert lines_on_disk(out, "friend_ids") >= 1, text[-2000:]  # it crawled, in distributed mode
    assert "JOBDIR is ignored with REDIS_URL" in text
    assert not (jobdir / "tweetform.sqlite").exists()


def test_a_second_crawl_on_a_busy_jobdir_exits_2(box, tmp_path: Path):
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    out, jobdir = tmp_path / "out", tmp_path / "job"
    with open(tmp_path / "first.log", "w") as fh:
        first = subprocess.Popen(crawl_cmd("friends", jobdir, SLOW, {"user_id": seed, "depth": 3}), cwd=ROOT,
                                 env=crawl_env(box, out), stdout=fh, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while lines_on_disk(out, "friend_ids") < 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            second = run_crawl(box, "friends", tmp_path / "out2", settings={"JOBDIR": str(jobdir)}, user_id=seed, depth=3)
        finally:
            first.send_signal(signal.SIGINT)
            first.wait(120)
    assert second.returncode == 2, second.stderr[-2000:]
    assert second.stderr.strip().splitlines() == [f"tweetform: JOBDIR {jobdir} is in use by another crawl"]
    assert not (tmp_path / "out2").exists()
