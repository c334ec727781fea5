"""One set of numbers (issue 16 §4): the progress line, the stop line, the closing summary, the stats and the
manifest say the same pages and spend for a job — the whole job's, over every run of it — and the manifest's
per-app spend and ``last_complete_level`` hold after a job is continued."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from crawling import FULL_LOG, bucket, ids_of, read_lines, run_crawl
from test_distributed import no_process_left_behind  # noqa: F401  (a failing test leaves no worker running)

from tweetform.exitcodes import BUDGET_EXHAUSTED, DONE

FAST = ("--users", "3000", "--seed", "7", "--window", "1")
MONEY = r"\$([0-9,]+\.[0-9]+)"


@pytest.fixture
def box(sandbox_factory):
    return sandbox_factory(*FAST)


def dollars(text: str) -> float:
    return float(text.replace(",", ""))


def test_a_continued_job_shows_one_set_of_numbers(box, tmp_path: Path):
    """Today's code, after a continuation: the stop line said 'spent $2.00 of $2.00' while the progress line said
    '$1.00 spent of $2.00' (this run only), and the manifest's spent_usd_by_app was the last run's."""
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    args = dict(user_id=seed, depth=2, job="nums", settings={"TWEETFORM_PROGRESS": "log", **FULL_LOG})
    first = run_crawl(box, "friends", tmp_path, budget=0.6, **args)
    assert first.returncode == BUDGET_EXHAUSTED, first.stderr[-3000:]
    second = run_crawl(box, "friends", tmp_path, budget=1.2, **args)
    assert second.returncode == BUDGET_EXHAUSTED, second.stderr[-3000:]
    err = second.stderr
    billed = box.get("/_sandbox/billing")["total_usd"]
    [stop] = re.findall(rf"stopped at its budget: spent {MONEY} of {MONEY}", err)
    progress = re.findall(rf"progress: friends · (\d+) pages? · users \d+/\d+ · \d+ errors? · {MONEY} spent of {MONEY}", err)[-1]
    [summary] = re.findall(rf"tweetform: job nums ended: .*?; (\d+) page\(s\), (\d+) error record\(s\), \d+ failed; {MONEY} spent of "
                           rf"{MONEY}[^\n]* \(whole job, 2 runs\)", err)
    manifest = json.loads((tmp_path / "_jobs" / "nums.json").read_text())
    stats = {k: float(v) for k, v in re.findall(r"'(tweetform/job/[a-z]+)': ([0-9.]+)", err)}
    pages = sum(len(lines) for lines in bucket(tmp_path, "friend_ids").values())
    # money: the whole job's, everywhere, and what the sandbox billed
    for spent in (dollars(stop[0]), dollars(progress[1]), dollars(summary[2]), manifest["spent_usd"], stats["tweetform/job/usd"]):
        assert spent == pytest.approx(billed)
    assert dollars(stop[1]) == dollars(progress[2]) == dollars(summary[3]) == manifest["budget_usd"] == 1.2
    assert sum(manifest["spent_usd_by_app"].values()) == pytest.approx(billed)  # both runs' apps
    # pages: the data pages of both runs, everywhere, as the files hold them
    assert int(progress[0]) == int(summary[0]) == manifest["pages"] == stats["tweetform/job/pages"] == pages
    assert " · whole job (this run: " in err


def test_last_complete_level_after_a_job_is_continued(box, tmp_path: Path):
    """Today's code left last_complete_level null or short after a continuation: it only saw the last run's requests."""
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    out = tmp_path / "plain"
    first = run_crawl(box, "friends", out, user_id=seed, depth=2, job="plain", budget=0.3)
    assert first.returncode == BUDGET_EXHAUSTED, first.stderr[-3000:]
    assert json.loads((out / "_jobs" / "plain.json").read_text())["last_complete_level"] == 1  # the seed's list only
    done = run_crawl(box, "friends", out, user_id=seed, depth=2, job="plain", budget=100)
    assert done.returncode == DONE, done.stderr[-3000:]
    manifest = json.loads((out / "_jobs" / "plain.json").read_text())
    assert manifest["last_complete_level"] == 2 and manifest["stopped_by"] is None  # it went on to the end
    # max_users: a level the cap cut short is not complete, before and after a continuation
    out = tmp_path / "capped"
    first = run_crawl(box, "friends", out, user_id=seed, depth=2, max_users=6, job="capped", budget=0.3)
    assert first.returncode == BUDGET_EXHAUSTED, first.stderr[-3000:]
    done = run_crawl(box, "friends", out, user_id=seed, depth=2, max_users=6, job="capped", budget=100)
    assert done.returncode == DONE, done.stderr[-3000:]
    assert json.loads((out / "_jobs" / "capped.json").read_text())["last_complete_level"] == 1


def test_last_complete_level_of_a_distributed_job_is_every_workers(sandbox_factory, redis_url: str, tmp_path: Path):
    """Two processes share a depth-2 job (`scrapy crawl -a …` with REDIS_URL, and a worker): the manifest,
    `scrapy status` and `scrapy wait` give the level the whole job completed, from the state both share —
    2 for a finished job, 1 for one max_users cut at level 2. The manifest used the crawl process's own view
    (the pages the other worker fetched were missing: level 2 was never complete)."""
    import signal
    import subprocess
    import sys

    from test_distributed import ROOT, start_workers, wait_all, wait_registered, worker_env

    box = sandbox_factory(*FAST, "--latency", "0.3")  # slow pages: the two processes share the work
    env = worker_env(box, redis_url, tmp_path)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    workers = start_workers(env, 1, False, "-s", "CONCURRENT_REQUESTS=2", "-s", "LOG_FILE=/dev/stderr", spiders="friends")
    wait_registered(redis_url, workers)

    def scrapy(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "scrapy", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)

    for job, extra, level in (("whole", (), 2), ("capped", ("-a", "max_users=6"), 1)):
        crawl = scrapy("crawl", "friends", "-a", f"user_id={seed}", "-a", "depth=2", "-a", f"job={job}", *extra,
                       "-s", "CONCURRENT_REQUESTS=2")
        assert crawl.returncode == DONE, crawl.stderr[-3000:]
        assert json.loads((tmp_path / "_jobs" / f"{job}.json").read_text())["last_complete_level"] == level, job
        [row] = [j for j in json.loads(scrapy("status", "--json").stdout)["jobs"] if j["job"] == job]
        assert row["last_complete_level"] == level
        assert f"levels complete: 1..{level}" in scrapy("status").stdout
        waited = scrapy("wait", job)
        assert waited.returncode == DONE and waited.stderr.strip() == f"job {job} done; levels complete: 1..{level}"
    workers[0].send_signal(signal.SIGTERM)
    [log] = wait_all(workers)
    assert "'response_received_count'" in log  # the worker fetched part of the jobs' pages


def test_last_complete_level_of_a_distributed_job_stopped_at_its_budget(sandbox_factory, redis_url: str, tmp_path: Path):
    """A depth-2 job without max_users, shared by a crawl process and a worker, stops at its budget in level 2:
    the manifest, `scrapy status` and `scrapy wait` say level 1 is complete (every level-1 page is written,
    level 2 is not), as a local job would. Before, Redis mode said no level (null) for any job not done."""
    import subprocess
    import sys

    import redis

    from test_distributed import ROOT, start_workers, wait_all, wait_registered, worker_env

    box = sandbox_factory(*FAST, "--latency", "0.2")
    env = worker_env(box, redis_url, tmp_path)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    friends = box.truth("following", seed)
    budget = round(len(friends) * 0.01 + 0.4, 2)  # level 1 (one id a cent) and a few of level 2's pages
    workers = start_workers(env, 1, False, "-s", "CONCURRENT_REQUESTS=2", spiders="friends")
    wait_registered(redis_url, workers)

    def scrapy(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "scrapy", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)

    try:
        crawl = scrapy("crawl", "friends", "-a", f"user_id={seed}", "-a", "depth=2", "-a", "job=spent", "-a", f"budget={budget}",
                       "-s", "CONCURRENT_REQUESTS=2")
        assert crawl.returncode == BUDGET_EXHAUSTED, crawl.stderr[-3000:]
        pages = bucket(tmp_path, "friend_ids")
        assert ids_of(pages[str(seed)]) == friends  # level 1 is written whole ...
        assert set(pages) - {str(seed)}  # ... level 2 in part: some pages, others kept for more budget
        assert redis.Redis.from_url(redis_url).zcard("tweetform:job:spent:parked") > 0
        assert json.loads((tmp_path / "_jobs" / "spent.json").read_text())["last_complete_level"] == 1
        [row] = [j for j in json.loads(scrapy("status", "--json").stdout)["jobs"] if j["job"] == "spent"]
        assert row["state"] == "budget_exhausted" and row["last_complete_level"] == 1
        assert "levels complete: 1..1" in scrapy("status").stdout
        waited = scrapy("wait", "spent")
        assert waited.returncode == BUDGET_EXHAUSTED and waited.stderr.strip() == "job spent budget_exhausted; levels complete: 1..1"
    finally:
        workers[0].terminate()
        wait_all(workers)


def slow_depth2_job(sandbox_factory, redis_url: str, tmp_path: Path, job: str, exit_when_idle: bool) -> tuple:
    """A depth-2 friends job pushed and taken by one worker, one page at a time from a slow sandbox (level 2 lasts
    seconds): (sandbox, worker env, seed, the seed's friends, a Redis client, [worker])."""
    import redis

    from test_distributed import push, start_workers, worker_env

    box = sandbox_factory(*FAST, "--latency", "0.4")
    env = worker_env(box, redis_url, tmp_path)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    friends = box.truth("following", seed)
    r = redis.Redis.from_url(redis_url)
    push(env, "friends", "--user-id", str(seed), "--depth", "2", "--job", job)
    workers = start_workers(env, 1, exit_when_idle, "-s", "CONCURRENT_REQUESTS=1", spiders="friends")
    return box, env, seed, friends, r, workers


def test_a_running_distributed_job_reports_only_levels_whose_pages_are_written(sandbox_factory, redis_url: str, tmp_path: Path):
    """`scrapy status` polled while workers crawl a depth-2 job (no max_users) reports level 1 once the seed's
    list is written whole, before the job ends, and never a level whose pages are not all in the output files
    (read after each look: files only grow). Before, a running Redis job reported no level.

    One look is taken in level 2 by construction: once the job's shared state says level 1 is complete (read
    straight from Redis, a few ms a look), the worker is frozen (SIGSTOP) while `scrapy status` runs, then thawed;
    the job is running all along. Looks taken only while it crawled could all miss level 2 on a loaded machine
    (each starts a Python process)."""
    import signal
    import subprocess
    import sys
    import time

    from test_distributed import ROOT, assert_network_equals_truth, wait_all
    from tweetform.state.redis.jobs import job_last_complete_level

    box, env, seed, friends, r, workers = slow_depth2_job(sandbox_factory, redis_url, tmp_path, "polled", exit_when_idle=True)
    seen = []

    def written_whole(level: int | None, state: str = "") -> None:
        """What a look says is complete is in the files (read right after the look: files only grow)."""
        if level:
            seed_file = tmp_path / "friend_ids" / f"{seed}.jsonl"  # (other files may be mid-write)
            assert seed_file.exists() and ids_of(read_lines(seed_file)) == friends, (level, state)
        if level == 2:  # every page of both levels is written
            assert_network_equals_truth(box, tmp_path, seed, 2)

    def look() -> None:
        run = subprocess.run([sys.executable, "-m", "scrapy", "status", "--json"], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=60)
        rows = [j for j in json.loads(run.stdout)["jobs"] if j["job"] == "polled"] if run.returncode == 0 else []
        if rows:
            written_whole(rows[0]["last_complete_level"], rows[0]["state"])
            seen.append((rows[0]["state"], rows[0]["last_complete_level"]))

    try:
        deadline = time.monotonic() + 120
        while (level := job_last_complete_level(r, "polled")) is None:  # what `scrapy status` reads, every 20 ms
            assert workers[0].poll() is None and time.monotonic() < deadline, "the job ended or stalled before level 1 was complete"
            time.sleep(0.02)
        written_whole(level)
        workers[0].send_signal(signal.SIGSTOP)  # in level 2 (its pages take seconds): it stays there while we look
        try:
            assert job_last_complete_level(r, "polled") == 1
            look()
        finally:
            workers[0].send_signal(signal.SIGCONT)
        assert seen == [("running", 1)], seen  # level 1 was reported complete while the job ran
        while workers[0].poll() is None:  # and no look while it crawls on says more than the files hold
            look()
    finally:
        wait_all(workers)
    assert_network_equals_truth(box, tmp_path, seed, 2)


def test_a_paused_then_cancelled_distributed_job_keeps_its_complete_level(sandbox_factory, redis_url: str, tmp_path: Path):
    """Paused in level 2 (its queued requests parked), then cancelled, a depth-2 job without max_users still says
    level 1 is complete in `scrapy status`, and level 2 is not: its pages are not all written. Before, Redis mode
    said no level for a job that was not done. The pause lands in level 2 by construction: the worker is frozen
    (SIGSTOP) from the moment level 1 is complete until `scrapy admin pause` has returned."""
    import signal
    import subprocess
    import sys
    import time

    from test_distributed import ROOT, admin, wait_all
    from tweetform.state.redis.jobs import job_last_complete_level

    box, env, seed, friends, r, workers = slow_depth2_job(sandbox_factory, redis_url, tmp_path, "halted", exit_when_idle=False)
    try:
        deadline = time.monotonic() + 120
        while job_last_complete_level(r, "halted") != 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        workers[0].send_signal(signal.SIGSTOP)  # level 2's pages take seconds: it cannot end before the pause
        try:
            assert admin(env, "pause", "halted").returncode == 0
        finally:
            workers[0].send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 60
        while r.hlen("tweetform:friends:inflight") and time.monotonic() < deadline:  # what was in flight finishes
            time.sleep(0.1)

        def row() -> dict:
            look = subprocess.run([sys.executable, "-m", "scrapy", "status", "--json"], cwd=ROOT, env=env, capture_output=True,
                                  text=True, timeout=60)
            return next(j for j in json.loads(look.stdout)["jobs"] if j["job"] == "halted")

        paused = row()
        assert paused["state"] == "paused" and paused["last_complete_level"] == 1
        pages = bucket(tmp_path, "friend_ids")
        assert ids_of(pages[str(seed)]) == friends and r.zcard("tweetform:job:halted:parked") > 0  # level 2 is not whole
        assert admin(env, "cancel", "halted").returncode == 0
        cancelled = row()
        assert cancelled["state"] == "cancelled" and cancelled["last_complete_level"] == 1
    finally:
        workers[0].terminate()
        wait_all(workers)
