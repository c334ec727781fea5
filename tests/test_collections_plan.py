"""``scrapy plan`` of the collection spiders and v2 search, in dollars, against what the sandbox then bills.

Search and conversation are sized with the counts endpoints; quotes, retweeted_by and liking_users
with their seed tweets' public_metrics. The plan's dollars are what the job's ``data`` returns
(posts, users, likes); what expansions add to ``includes`` is an upper bound shown apart, so the
tests compare data with data (Post reads include the referenced tweets of includes) and check the bound.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from crawling import run_crawl
from test_plan import plan

from tweetform.api import pricing

WORLD = ("--users", "3000", "--seed", "7", "--window", "1")


@pytest.fixture
def box(sandbox_factory):
    return sandbox_factory(*WORLD)


def planned_then_billed(box, tmp_path: Path, spider: str, **args: str) -> tuple[dict, dict]:
    spargs = [x for name, value in args.items() for x in ("-a", f"{name}={value}")]
    result = plan(box, spider, *spargs, "--json")
    assert result.returncode == 0, result.stderr
    est = json.loads(result.stdout)
    box.reset()  # the plan's own counts and look-ups were billed too
    crawl = run_crawl(box, spider, tmp_path / spider, **args)
    assert crawl.returncode == 0, crawl.stderr[-2000:]
    return est, box.get("/_sandbox/billing")


def within(estimate: float, billed: float, share: float) -> bool:
    return billed > 0 and abs(estimate - billed) <= share * billed


@pytest.mark.parametrize("spider,args", [
    ("search", {"query": "data"}),
    ("conversation", {}),
])
def test_search_and_conversation_plans_within_15_percent_of_the_bill(box, tmp_path: Path, spider, args):
    if spider == "conversation":
        args = {"tweet_id": str(box.get("/_sandbox/truth/engaged/12")["ids"][0])}
    est, bill = planned_then_billed(box, tmp_path, spider, **args)
    resources = {k: sum(a["resources"].get(k, 0) for a in bill["apps"].values()) for k in ("post", "user")}
    posts_billed = resources["post"] * pricing.price(pricing.POST)
    assert within(est["usd"], posts_billed, 0.15), (est["usd"], posts_billed, est["resources"], resources)
    assert bill["total_usd"] <= est["usd"] + est["includes_usd"] + 1e-9  # includes stay within their bound
    assert est["tweets"] > 0 and any(e["endpoint"].startswith("/2/tweets/search/") for e in est["endpoints"])


@pytest.mark.parametrize("spider", ["quotes", "retweeted_by", "liking_users"])
def test_engagement_plans_from_the_seed_tweets_metrics(box, tmp_path: Path, spider):
    seeds = box.get("/_sandbox/truth/engaged/12")["ids"]
    est, bill = planned_then_billed(box, tmp_path, spider, tweet_id=",".join(map(str, seeds)))
    data = bill["total_usd"] if spider != "quotes" else sum(a["resources"].get("post", 0) for a in bill["apps"].values()) * 0.005
    assert within(est["usd"], data, 0.15), (est, bill)
    assert bill["total_usd"] <= est["usd"] + est["includes_usd"] + 1e-9
