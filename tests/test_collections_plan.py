"""``scrapy plan`` of the collection spiders and v2 search, in dollars, against what the sandbox then bills.

Search and conversation are sized with the counts endpoints; quotes, retweeted_by and liking_users
with their seed tweets' public_metrics. The plan's dollars are what the job's ``data`` returns
(posts, users, likes); what expansions add to ``includes`` is an upper bound shown apart, so the
tests compare data with data (Post reads include the referenced tweets of includes) and check the bound.
"""

from __future__ import annotations

import json
import re
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


@pytest.mark.parametrize("spider", ["search", "conversation"])
def test_search_and_conversation_plans_within_15_percent_of_the_bill(box, tmp_path: Path, spider):
    """Counts for the posts, one sample page for what includes add (authors, referenced tweets):
    the plan's dollars within 15 % of everything the crawl is then billed."""
    args = {"query": "data"} if spider == "search" else {"tweet_id": str(box.get("/_sandbox/truth/engaged/12")["ids"][0])}
    est, bill = planned_then_billed(box, tmp_path, spider, **args)
    assert within(est["usd"], bill["total_usd"], 0.15), (est["usd"], bill)
    assert est["includes_usd"] == 0 and est["resources"]["user"] > 0  # estimated, not only bounded
    assert est["tweets"] > 0 and any(e["endpoint"].startswith("/2/tweets/search/") for e in est["endpoints"])


def test_search_plan_without_a_sample_counts_posts_and_bounds_includes(box, tmp_path: Path):
    """--sample 0: only the counts endpoint is asked; the posts within 15 % of the Post reads billed,
    and the whole bill within the plan's bound for includes."""
    result = plan(box, "search", "-a", "query=science", "--sample", "0", "--json")
    assert result.returncode == 0, result.stderr
    est = json.loads(result.stdout)
    box.reset()
    assert run_crawl(box, "search", tmp_path, query="science").returncode == 0
    bill = box.get("/_sandbox/billing")
    posts = sum(a["resources"].get("post", 0) for a in bill["apps"].values()) * pricing.price(pricing.POST)
    assert within(est["usd"], posts, 0.15), (est, bill)
    assert bill["total_usd"] <= est["usd"] + est["includes_usd"] + 1e-9


@pytest.mark.parametrize("spider", ["quotes", "retweeted_by", "liking_users"])
def test_engagement_plans_from_the_seed_tweets_metrics(box, tmp_path: Path, spider):
    seeds = box.get("/_sandbox/truth/engaged/12")["ids"]
    est, bill = planned_then_billed(box, tmp_path, spider, tweet_id=",".join(map(str, seeds)))
    data = bill["total_usd"] if spider != "quotes" else sum(a["resources"].get("post", 0) for a in bill["apps"].values()) * 0.005
    assert within(est["usd"], data, 0.15), (est, bill)
    assert bill["total_usd"] <= est["usd"] + est["includes_usd"] + 1e-9


@pytest.mark.parametrize("spider,args,kind", [
    ("counts", {"query": "data"}, "counts_recent"),
    ("lists", {"list_id": "OWNED", "relation": "members"}, "user"),
])
def test_counts_and_lists_plans_equal_the_bill(box, tmp_path: Path, spider, args, kind):
    """counts: one request a query (exact); a list's members from /2/lists/:id's member_count —
    each equal to what the crawl is billed."""
    if args.get("list_id") == "OWNED":
        args = {**args, "list_id": str(box.get("/_sandbox/truth/owned_lists/12")["ids"][0])}  # one list: lists overlap
    est, bill = planned_then_billed(box, tmp_path, spider, **args)
    billed = sum(a["resources"].get(kind, 0) for a in bill["apps"].values())
    assert est["resources"][kind] == billed > 0, (est, bill)
    assert est["usd"] == pytest.approx(bill["total_usd"])


@pytest.mark.parametrize("spider,args,kind,truth", [
    ("liked_tweets", {}, pricing.POST, "liked"),
    ("lists", {"relation": "memberships"}, pricing.LIST, "memberships"),
])
def test_liked_tweets_and_memberships_plans_from_the_users_counts(box, tmp_path: Path, spider, args, kind, truth):
    """liked_tweets from the seed users' like_count, relation=memberships from their listed_count: the
    sandbox's users count what those endpoints list, so the plan counts exactly the truth's posts or lists,
    and its dollars are within 15 % of the data billed (Post reads include the referenced tweets of
    includes; a list two seeds are members of is billed once)."""
    seeds = [12, *box.get("/_sandbox/examples")["ordinary"][:3]]
    expected = sum(len(box.truth(truth, uid)) for uid in seeds)
    est, bill = planned_then_billed(box, tmp_path, spider, user_id=",".join(map(str, seeds)), **args)
    assert est["resources"][kind] == expected > 100, (est, expected)
    billed = sum(a["resources"].get(kind, 0) for a in bill["apps"].values())
    assert within(est["usd"], billed * pricing.price(kind), 0.15), (est, bill)
    assert bill["total_usd"] <= est["usd"] + est["includes_usd"] + 1e-9


def test_cascade_plan_to_depth_3_within_25_percent_of_the_bill(box, tmp_path: Path):
    """scrapy plan cascade depth=3: level 1 from the seed's public_metrics and a count of its thread, levels 2
    and 3 from a sample of level 1 (its first pages: the thread and the quotes), level after level; includes
    from that sample. Its dollars and requests within 25 % of what the sandbox then bills and answers for the
    crawl (three levels of posts: the sandbox's cascades), with a basis and a range that holds the bill."""
    seed = str(box.get("/_sandbox/truth/engaged/12")["ids"][0])
    est, bill = planned_then_billed(box, tmp_path, "cascade", tweet_id=seed, depth="3")
    served = sum(c["served"] for c in box.counters()["limits"])
    planned = sum(e["requests"] for e in est["endpoints"])
    print(json.dumps({"usd": est["usd"], "range": est["usd_range"], "billed": bill["total_usd"], "requests": planned,
                      "served": served, "resources": est["resources"], "notes": est["notes"]}))
    assert within(est["usd"], bill["total_usd"], 0.25), (est, bill)
    assert within(planned, served, 0.25), (est["endpoints"], box.counters()["limits"])
    low, high = est["usd_range"]
    assert low < est["usd"] < high and low <= bill["total_usd"] <= high
    assert "sample of" in est["basis"] and est["includes_usd"] == 0 and est["plan_spent_usd"] > 0
    # the truth's cascade has three levels of posts: the plan sized what is below the seed's own reactions
    posts = box.get(f"/_sandbox/truth/cascade?seeds={seed}&depth=3&include=replies,quotes,retweets")["posts"]
    assert set(posts.values()) == {0, 1, 2, 3}


def test_cascade_plan_deeper_than_the_cascade_says_its_empty_levels_once(box):
    """depth=30 on a cascade a few levels deep: the note lists the levels that hold posts and says the rest are
    empty in a few words (it listed thirty levels of zeros twice)."""
    seed = str(box.get("/_sandbox/truth/engaged/12")["ids"][0])
    done = plan(box, "cascade", "-a", f"tweet_id={seed}", "-a", "depth=30", "--json")
    assert done.returncode == 0, done.stderr
    [note] = [n for n in json.loads(done.stdout)["notes"] if n.startswith("cascade: ")]
    m = re.fullmatch(r"cascade: ([\d, ]+) post\(s\) found at depth\(s\) 1\.\.(\d+), ([\d, ]+) expanded at level\(s\) 1\.\.(\d+) "
                     r"\(seeds: \$[\d.]+\); levels (\d+)\.\.30: none", note)
    assert m, note
    found, expanded = m.group(1).split(", "), m.group(3).split(", ")
    assert m.group(2) == m.group(4) and int(m.group(5)) == int(m.group(2)) + 1 and len(found) == len(expanded) == int(m.group(2))
    assert 3 <= len(found) < 30 and found[:3] != ["0", "0", "0"] and found[-2:] != ["0", "0"]
