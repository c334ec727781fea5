"""One set of numbers (issue 16 §4): the progress line, the stop line, the closing summary, the stats and the
manifest say the same pages and spend for a job — the whole job's, over every run of it — and the manifest's
per-app spend and ``last_complete_level`` hold after a job is continued."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from crawling import FULL_LOG, bucket, run_crawl

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
