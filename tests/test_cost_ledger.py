"""tweetform's own accounting against the sandbox's ledger (separate code, the same rule): each checks the other."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from crawling import FULL_LOG, bucket, demo_credentials, ids_of, run_crawl
from test_cost_budget import stats_of

FAST = ("--users", "3000", "--seed", "7", "--window", "1")


@pytest.fixture
def box(sandbox_factory):
    return sandbox_factory(*FAST)


def crawls(box) -> list[tuple[str, dict]]:
    ex = box.get("/_sandbox/examples")
    tl = box.get(f"/_sandbox/truth/timeline/{ex['long_timeline'][0]}")["ids"][:120]
    users = ",".join(map(str, ex["ordinary"] + ex["protected"][:1] + ex["suspended"][:1]))
    return [
        ("friends", {"user_id": f"{ex['ordinary'][0]},{ex['ordinary'][1]}", "depth": 2, "max_users": 6}),
        ("followers", {"user_id": ex["many_followers"][1], "data_type": "users"}),
        ("timeline", {"user_id": f"{ex['long_timeline'][0]},{ex['ordinary'][0]}", "max_tweets": 250}),
        ("search", {"query": "data", "max_tweets": 150}),
        ("users", {"user_id": users}),
        ("tweets", {"tweet_id": ",".join(map(str, tl + tl[:10]))}),
    ]


@pytest.mark.parametrize("api", ["2", "1.1"])
def test_accounting_matches_the_ledger_for_every_spider(box, tmp_path: Path, api: str):
    for spider, args in crawls(box):
        box.reset()
        result = run_crawl(box, spider, tmp_path / spider, api=api, settings=FULL_LOG, **args)
        assert result.returncode == 0, (spider, result.stderr[-3000:])
        billing = box.get("/_sandbox/billing")
        stats = stats_of(result)
        assert billing["total_usd"] > 0, spider
        assert stats.get("tweetform/cost/usd") == pytest.approx(billing["total_usd"], abs=1e-6), (spider, billing)
        for app, bill in billing["apps"].items():
            assert stats.get(f"tweetform/cost/usd/{app}") == pytest.approx(bill["usd"], abs=1e-6), (spider, app, billing)
            for kind, n in bill["resources"].items():
                assert stats.get(f"tweetform/cost/resources/{kind}") == n, (spider, kind, billing)


def test_day_roll_over_as_the_client_sees_it(sandbox_factory, tmp_path: Path):
    """The sandbox's clock passes midnight during a crawl: what was billed yesterday is billed again, and the
    client (which takes the day from the answers' Date header) counts the same."""
    box = sandbox_factory(*FAST, "--limit", "/2/users/:id/following=1")
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    midnight_passed = threading.Event()

    def advance_after_first_page() -> None:
        while not midnight_passed.is_set():
            served = sum(c["served"] for c in box.counters()["limits"] if c["endpoint"] == "/2/users/:id/following")
            if served >= 1:
                box.post("/_sandbox/clock", {"advance": 86_400})
                midnight_passed.set()
            time.sleep(0.02)

    watcher = threading.Thread(target=advance_after_first_page, daemon=True)
    watcher.start()
    result = run_crawl(box, "friends", tmp_path, user_id=seed, depth=2, max_users=5,
                       credentials=demo_credentials("demo-user-1"), settings=FULL_LOG)
    midnight_passed.set()
    watcher.join()
    assert result.returncode == 0, result.stderr[-3000:]
    listed = [i for pages in bucket(tmp_path, "friend_ids").values() for i in ids_of(pages)]
    billing = box.get("/_sandbox/billing")
    [app] = billing["apps"]
    billed = billing["apps"][app]["resources"]["follow"]
    assert len(set(listed)) < billed <= len(listed)  # some accounts were billed on both days
    stats = stats_of(result)
    assert stats["tweetform/cost/resources/follow"] == billed
    assert stats["tweetform/cost/usd"] == pytest.approx(billing["total_usd"])


def test_accounting_through_faults_and_a_budget(sandbox_factory, tmp_path: Path):
    """5xx, truncated bodies and dropped connections are never billed; retries are billed once: both sides agree,
    and a budget holds through them."""
    box = sandbox_factory(*FAST, "--limit", "/2/users/:id/following=500")
    seeds = ",".join(map(str, box.get("/_sandbox/examples")["ordinary"][:3]))
    box.post("/_sandbox/faults", {"error": 0.2, "truncate": 0.15, "drop": 0.15})
    result = run_crawl(box, "friends", tmp_path, user_id=seeds, depth=2, budget=4, settings={"TWEETFORM_RETRY_BACKOFF": "0.05", **FULL_LOG})
    faults = box.counters()["faults"]
    box.post("/_sandbox/faults", {"error": 0, "truncate": 0, "drop": 0})
    assert result.returncode in (0, 7), result.stderr[-3000:]
    assert faults["error"] + faults["truncate"] + faults["drop"] > 0, faults  # answers that were not billed
    billed = box.get("/_sandbox/billing")["total_usd"]
    assert 0 < billed <= 4 and stats_of(result)["tweetform/cost/usd"] == pytest.approx(billed)


def test_a_continued_local_job_counts_no_id_twice_from_older_rows_or_packed_ones_and_a_page_is_one_insert(tmp_path):
    """The JOBDIR keeps a page's new ids in one row (an insert per id made bookkeeping 13 % of a page's CPU for pages of
    1,000 accounts, bench/cost_bench.py); the rows an older tweetform wrote, one an id, still count."""
    from tweetform.cost.billed import KeptCostLedger
    from tweetform.state.local.database import Database

    db = Database(tmp_path / "job")
    db.execute("INSERT INTO billed (app, kind, day, id) VALUES ('a', 'user', '2026-12-06', '1')")  # an older run's
    first = KeptCostLedger(db, {"user": 0.01})
    assert first.new_ids("a", "2026-12-06", [("user", ["1", "2", "3", "2"])]) == [2]
    assert db.query("SELECT count(*) FROM billed_ids") == [(1,)]  # the page's two new ids: one row
    db.commit()
    db.close()

    db = Database(tmp_path / "job")
    again = KeptCostLedger(db, {"user": 0.01})  # the job continued: nothing counted twice
    assert again.new_ids("a", "2026-12-06", [("user", ["1", "2", "3", "4"])]) == [1]
    assert again.new_ids("b", "2026-12-06", [("user", ["1"])]) == [1]  # another app's bill
    db.close()
