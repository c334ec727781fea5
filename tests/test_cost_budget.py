"""Budgets against the sandbox: a crawl never spends more than its budget, stops cleanly, and continues."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from crawling import bucket, ids_of, run_crawl

from tweetform.exitcodes import BUDGET_EXHAUSTED, DONE

FAST = ("--users", "3000", "--seed", "7", "--window", "1")


@pytest.fixture
def box(sandbox_factory):
    return sandbox_factory(*FAST)


def stats_of(result) -> dict:
    """The crawl's final Scrapy stats (numbers and strings), from its log."""
    import re

    text = result.stderr[result.stderr.rindex("Dumping Scrapy stats:"):]
    found = {}
    for key, value in re.findall(r"'([^']+)': ([0-9.]+|'[^']*')", text):
        found[key] = value.strip("'") if value.startswith("'") else float(value)
    return found


def test_budget_stops_the_crawl_and_a_larger_one_continues(box, tmp_path: Path):
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    jobdir = tmp_path / "jobdir"
    args = dict(user_id=seed, depth=2, job="budgeted")
    first = run_crawl(box, "friends", tmp_path / "out", budget=0.5, settings={"JOBDIR": jobdir}, **args)
    assert first.returncode == BUDGET_EXHAUSTED, first.stderr[-3000:]
    stats = stats_of(first)
    assert 0 < stats["tweetform/cost/usd"] <= 0.5
    assert stats["finish_reason"] == "budget_exhausted"
    line = [l for l in first.stderr.splitlines() if "stopped at its budget" in l]
    assert len(line) == 1 and "spent $" in line[0] and "of $0.50" in line[0]
    pages_before = sum(len(p) for p in bucket(tmp_path / "out", "friend_ids").values())
    second = run_crawl(box, "friends", tmp_path / "out", budget=1000, settings={"JOBDIR": jobdir}, **args)
    assert second.returncode == DONE, second.stderr[-3000:]
    pages = bucket(tmp_path / "out", "friend_ids")
    assert sum(len(p) for p in pages.values()) > pages_before
