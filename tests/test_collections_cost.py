"""Budget and spend of the collection spiders: tweetform's own ledger equals the sandbox's bill
(Like reads, List reads, counts billed per request), and a budget stops a crawl that would pass it."""

from __future__ import annotations

from pathlib import Path

import pytest
from crawling import FULL_LOG, run_crawl
from test_cost_budget import stats_of

from tweetform.exitcodes import BUDGET_EXHAUSTED

WORLD = ("--users", "3000", "--seed", "7", "--window", "1")


@pytest.fixture
def box(sandbox_factory):
    return sandbox_factory(*WORLD)


def arguments(box, spider: str) -> dict[str, str]:
    tweet = str(box.get("/_sandbox/truth/engaged/12")["ids"][0])
    return {
        "quotes": {"tweet_id": tweet}, "retweeted_by": {"tweet_id": tweet}, "liking_users": {"tweet_id": tweet},
        "liked_tweets": {"user_id": "12"}, "mentions": {"user_id": "12", "max_tweets": "150"},
        "lists": {"screen_name": "jack", "relation": "memberships"}, "counts": {"query": "data", "granularity": "day"},
        "conversation": {"tweet_id": tweet}, "timeline": {"screen_name": "jack", "max_tweets": "100"},
    }[spider]


@pytest.mark.parametrize("spider", ["quotes", "retweeted_by", "liking_users", "liked_tweets", "mentions", "lists", "counts",
                                    "conversation", "timeline"])
def test_spend_equals_the_sandbox_bill(box, tmp_path: Path, spider):
    """Seeds by screen name too (lists, timeline): the names' look-up is billed though no page of it is
    written, and tweetform charges it (it did not: $0.01 a name short of the bill)."""
    result = run_crawl(box, spider, tmp_path, budget=1000, settings=FULL_LOG, **arguments(box, spider))
    assert result.returncode == 0, result.stderr[-3000:]
    bill = box.get("/_sandbox/billing")
    assert bill["total_usd"] > 0
    assert stats_of(result)["tweetform/cost/usd"] == pytest.approx(bill["total_usd"]), (spider, bill)


def test_budget_stops_a_collection_crawl(box, tmp_path: Path):
    """liking_users of three tweets with $0.20: stopped at its budget (exit 7), never spent past it."""
    tweets = ",".join(map(str, box.get("/_sandbox/truth/engaged/12")["ids"]))
    result = run_crawl(box, "liking_users", tmp_path, tweet_id=tweets, budget=0.2)
    assert result.returncode == BUDGET_EXHAUSTED, result.stderr[-3000:]
    assert 0 < box.get("/_sandbox/billing")["total_usd"] <= 0.2
