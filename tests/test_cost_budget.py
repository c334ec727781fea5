"""Budgets against the sandbox: a crawl never spends more than its budget, stops cleanly, and continues."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from crawling import FULL_LOG, bucket, errors_of, ids_of, run_crawl

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
    first = run_crawl(box, "friends", tmp_path / "out", budget=0.5, settings={"JOBDIR": jobdir, **FULL_LOG}, **args)
    assert first.returncode == BUDGET_EXHAUSTED, first.stderr[-3000:]
    stats = stats_of(first)
    assert 0 < stats["tweetform/cost/usd"] <= 0.5
    assert stats["finish_reason"] == "budget_exhausted"
    line = [l for l in first.stderr.splitlines() if "stopped at its budget" in l]
    assert len(line) == 1 and "spent $" in line[0] and "of $0.50" in line[0]
    pages_before = sum(len(p) for p in bucket(tmp_path / "out", "friend_ids").values())
    # the job's spend is kept in its JOBDIR: a budget of $0.90 leaves $0.40 for this run
    more = run_crawl(box, "friends", tmp_path / "out", budget=0.9, settings={"JOBDIR": jobdir, **FULL_LOG}, **args)
    assert more.returncode == BUDGET_EXHAUSTED, more.stderr[-3000:]
    assert 0 < stats_of(more)["tweetform/cost/usd"] <= 0.4 + 1e-9
    assert box.get("/_sandbox/billing")["total_usd"] <= 0.9
    assert "spent $0.90 of $0.90" in more.stderr
    second = run_crawl(box, "friends", tmp_path / "out", budget=1000, settings={"JOBDIR": jobdir}, **args)
    assert second.returncode == DONE, second.stderr[-3000:]
    pages = bucket(tmp_path / "out", "friend_ids")
    assert sum(len(p) for p in pages.values()) > pages_before


def test_usage_capped_stops_like_the_budget_and_continues(sandbox_factory, tmp_path: Path):
    """Out of credits, the API answers usage-capped 429s: the job stops (exit 7, queue kept) instead of looping;
    with credits again, the same JOBDIR finishes the crawl without fetching any page twice."""
    box = sandbox_factory(*FAST, "--credits", "0.6")
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    args = dict(user_id=seed, depth=2, job="capped", settings={"JOBDIR": tmp_path / "jobdir", **FULL_LOG})
    first = run_crawl(box, "friends", tmp_path / "out", **args)
    assert first.returncode == BUDGET_EXHAUSTED, first.stderr[-3000:]
    stats = stats_of(first)
    assert stats["finish_reason"] == "budget_exhausted" and stats["tweetform/cost/usage_capped"] >= 1
    assert stats.get("tweetform/quota/rate_limited", 0) == 0  # a usage cap is not a rate limit to wait out
    [line] = [l for l in first.stderr.splitlines() if "stopped: the API's usage cap" in l]
    assert "no credits left" in line and "kept in the queue" in line
    assert box.get("/_sandbox/billing")["total_usd"] == pytest.approx(stats["tweetform/cost/usd"])
    for _ in range(10):  # each run is billed up to its credits; more are bought, and the job goes on
        box.post("/_sandbox/billing/reset")
        again = run_crawl(box, "friends", tmp_path / "out", **args)
        assert again.returncode in (DONE, BUDGET_EXHAUSTED), again.stderr[-3000:]
        if again.returncode == DONE:
            break
    assert again.returncode == DONE
    truth = box.get(f"/_sandbox/truth/reachable?seeds={seed}&depth=2&direction=friends")["ids"]
    lists = bucket(tmp_path / "out", "friend_ids")
    assert set(lists) | {k for k, v in errors_of(tmp_path / "out").items() if v == "protected"} == {str(u) for u in truth}
    for key, lines in lists.items():
        assert ids_of(lines) == box.truth("following", int(key)), key  # complete, each page once
    pages = [p for ps in lists.values() for p in ps]
    errors = [p for ps in bucket(tmp_path / "out", "errors").values() for p in ps if p["status"] == 200]
    assert box.counters()["statuses"]["200"] == len(pages) + len(errors)  # no page fetched (and paid) twice


def test_network_stopped_by_its_budget_records_its_last_complete_level(box, tmp_path: Path):
    """The sample is well defined: the manifest says which BFS levels are complete, and what was spent."""
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    result = run_crawl(box, "friends", tmp_path, user_id=seed, depth=3, budget=2.5, job="deep")
    assert result.returncode == BUDGET_EXHAUSTED, result.stderr[-3000:]
    manifest = json.loads((tmp_path / "_jobs" / "deep.json").read_text())
    assert manifest["state"] == "budget_exhausted" and manifest["stopped_by"] == "budget"
    assert manifest["spent_usd"] == pytest.approx(box.get("/_sandbox/billing")["total_usd"]) and manifest["budget_usd"] == 2.5
    level = manifest["last_complete_level"]
    assert level == 2  # the seed's list and every list of level 2 fit in $2.50; level 3 did not
    expected = box.get(f"/_sandbox/truth/reachable?seeds={seed}&depth={level}&direction=friends")["ids"]
    lists = bucket(tmp_path, "friend_ids")
    unlisted = set(errors_of(tmp_path))  # protected, suspended, missing: an error record instead of a list
    for uid in expected:  # every user of the complete levels has its whole list
        assert str(uid) in unlisted or ids_of(lists[str(uid)]) == box.truth("following", uid), uid
    # and level 3 was begun: the lists of levels <= 2 bill $1.89 (189 distinct accounts; the protected user's list
    # is not returned), so $0.61 is left for level 3 whatever the timing. How many of its lists get a page does
    # depend on timing (a large first page shrunk to what is left can take it all): count them apart from the
    # lists of levels <= 2 (len(lists) > len(expected) failed with one level-3 list and one unlisted user: 15 > 15)
    deeper = set(box.get(f"/_sandbox/truth/reachable?seeds={seed}&depth={level + 1}&direction=friends")["ids"])
    begun = {uid: pages for uid, pages in lists.items() if int(uid) not in set(expected)}
    assert begun and {int(uid) for uid in begun} <= deeper
    for uid, pages in begun.items():  # what level 3 got of a list is its beginning, in the API's order
        got = ids_of(pages)
        assert got == box.truth("following", int(uid))[:len(got)], uid


def test_lookups_split_to_fit_the_budget_and_lose_no_id(box, tmp_path: Path):
    """A batch of 100 ids that does not fit is split: what fits goes now, the rest is queued (kept)."""
    ids = box.get("/_sandbox/truth/followers/12")["ids"][:250]
    args = dict(user_id=",".join(map(str, ids)), job="hydrate", settings={"JOBDIR": tmp_path / "jobdir"})
    first = run_crawl(box, "users", tmp_path / "out", budget=0.5, **args)
    assert first.returncode == BUDGET_EXHAUSTED, first.stderr[-3000:]
    assert 0.4 <= box.get("/_sandbox/billing")["total_usd"] <= 0.5
    done = run_crawl(box, "users", tmp_path / "out", budget=100, **args)
    assert done.returncode == DONE, done.stderr[-3000:]
    got = set(ids_of(bucket(tmp_path / "out", "users")["hydrate"])) | {int(k) for k in errors_of(tmp_path / "out")}
    assert got == set(ids)  # every id has its user or its error record
