"""One set of numbers (issue 16 §4): the progress line, the stop line, the closing summary, the stats and the
manifest say the same pages and spend for a job — the whole job's, over every run of it — and the manifest's
per-app spend and ``last_complete_level`` hold after a job is continued."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from crawling import FULL_LOG, bucket, run_crawl
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
