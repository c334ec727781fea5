"""``scrapy plan``: the estimate before a crawl, checked against the requests the crawl then made."""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
from crawling import ROOT, demo_credentials, run_crawl

from tweetform.credentials import parse_credentials
from tweetform.planning import Counts, estimate, lookup_counts, sample_level2
from tweetform.spiders.network import FollowersSpider, FriendsSpider
from tweetform.spiders.timeline import TimelineSpider

FAST = ("--users", "3000", "--seed", "7", "--window", "1", "--limit", "/friends/ids=200", "--limit", "/followers/ids=200",
        "--limit", "/friends/list=200", "--limit", "/followers/list=200", "--limit", "/2/users/:id/following=200",
        "--limit", "/2/users/:id/followers=200")
CREDS = demo_credentials("demo-user-1", "demo-app-1")


def plan(box, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "TWEETFORM_API_BASE": box.base, "TWEETFORM_CREDENTIALS": json.dumps(CREDS),
           "PYTHONWARNINGS": "error", "TWEETFORM_RATE_LIMITS": json.dumps({"/followers/list": 200})}  # as the sandbox has it
    return subprocess.run([sys.executable, "-m", "scrapy", "plan", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def served(box, endpoint: str) -> int:
    return sum(c["served"] + c["rate_limited"] for c in box.counters()["limits"] if c["endpoint"] == endpoint)


@pytest.fixture
def box(sandbox_factory):
    return sandbox_factory(*FAST)


def test_plan_command_then_crawl(box, tmp_path: Path, capsys):
    ex = box.get("/_sandbox/examples")
    seeds = [ex["many_followers"][0], ex["ordinary"][0], ex["protected"][0], ex["suspended"][0]]
    args = [f"user_id={','.join(map(str, seeds))}", "api=1.1", "data_type=users"]
    result = plan(box, "followers", *[a for arg in args for a in ("-a", arg)], "--json")
    assert result.returncode == 0, result.stderr
    est = json.loads(result.stdout)
    assert est["lookup_requests"] == 1 and served(box, "/users/lookup") == 1
    assert est["exact"] and est["users"] == 4
    [ep] = est["endpoints"]
    assert ep["endpoint"] == "/followers/list" and ep["lanes"] == 2 and ep["per_window"] == 200 + 200
    box.reset()
    ok = run_crawl(box, "followers", tmp_path, user_id=",".join(map(str, seeds)), api="1.1", data_type="users")
    assert ok.returncode == 0, ok.stderr[-2000:]
    actual = served(box, "/followers/list")
    assert actual > 4  # the many-followers seed takes several pages
    assert ep["requests"] == actual
    # the human form: counts, the table, the one-line estimate
    code, out, err = plan_here(box, "followers", args, capsys)
    assert code == 0, err
    assert re.search(rf"/followers/list\s+{actual} requests\s+2 lane\(s\), 400 per 15 min\s+1 window\(s\)\s+no waiting", out)
    assert f"estimate: {actual} requests, 1 quota window(s) on /followers/list" in out


def plan_here(box, spider: str, spargs: list[str], capsys, budget: float | None = None) -> tuple[int, str, str]:
    """The command in this process (same code path as the CLI, minus the start-up)."""
    from scrapy.settings import Settings

    from tweetform.commands.plan import Command

    settings = Settings()
    settings.setmodule("tweetform.settings")
    settings.setdict({"TWEETFORM_API_BASE": box.base, "TWEETFORM_CREDENTIALS": CREDS,
                      "TWEETFORM_RATE_LIMITS": {"/followers/list": 200}}, priority="cmdline")
    command = Command()
    command.settings = settings
    capsys.readouterr()
    command.run([spider], argparse.Namespace(spargs=spargs, json=False, sample=100, budget=budget))
    out, err = capsys.readouterr()
    return command.exitcode, out, err


def test_plan_bad_arguments_one_line(box, capsys):
    code, out, err = plan_here(box, "friends", ["user_id=12x"], capsys)
    assert code == 2 and err == "tweetform: user_id must be numeric ids separated by commas; '12x' is not an id\n" and not out


@pytest.mark.parametrize("api", ["2", "1.1"])
def test_timeline_and_network_estimates_match_crawls(box, tmp_path: Path, api: str):
    ex = box.get("/_sandbox/examples")
    credentials = parse_credentials(CREDS)
    users = [ex["long_timeline"][0], ex["ordinary"][0], ex["protected"][0]]
    job = TimelineSpider.parse_arguments({"user_id": ",".join(map(str, users)), "api": api, "max_tweets": "450"})
    counts, lookups = lookup_counts(box.base, credentials, job)
    assert lookups == 1 and set(counts) == set(users)
    est = estimate(job, credentials, counts)
    box.reset()
    result = run_crawl(box, "timeline", tmp_path, user_id=",".join(map(str, users)), api=api, max_tweets=450)
    assert result.returncode == 0, result.stderr[-2000:]
    endpoint = "/2/users/:id/tweets" if api == "2" else "/statuses/user_timeline"
    [ep] = est.endpoints
    assert ep.endpoint == endpoint and ep.requests == served(box, endpoint)

    if api == "1.1":
        return  # v1.1 lists: test_plan_command_then_crawl
    seeds = [ex["many_friends"][0], ex["ordinary"][1], ex["deleted"][0]]
    job = FriendsSpider.parse_arguments({"user_id": ",".join(map(str, seeds)), "api": api})
    counts, _ = lookup_counts(box.base, credentials, job)
    est = estimate(job, credentials, counts)
    box.reset()
    result = run_crawl(box, "friends", tmp_path / "f", user_id=",".join(map(str, seeds)), api=api)
    assert result.returncode == 0, result.stderr[-2000:]
    endpoint = "/2/users/:id/following" if api == "2" else "/friends/ids"
    assert est.exact and est.endpoints[0].requests == served(box, endpoint)


def test_deeper_levels_estimate_within_reach(box, tmp_path: Path):
    """Level 2 and beyond are extrapolated: the estimate has the crawl's order of magnitude, capped by max_users."""
    ex = box.get("/_sandbox/examples")
    seed = ex["ordinary"][2]
    job = FriendsSpider.parse_arguments({"user_id": str(seed), "depth": "3", "max_users": "40"})
    credentials = parse_credentials(CREDS)
    counts, _ = lookup_counts(box.base, credentials, job)
    sample, sampled = sample_level2(box.base, credentials, job, counts)
    assert sampled == 1 and 0 < len(sample) <= counts[seed].friends  # (the first page of) the seed's list
    est = estimate(job, credentials, counts, sample=sample)
    assert not est.exact and est.users <= 40 and est.levels[:2] == [1, min(counts[seed].friends, 39)]
    box.reset()
    result = run_crawl(box, "friends", tmp_path, user_id=seed, depth=3, max_users=40)
    assert result.returncode == 0, result.stderr[-2000:]
    actual = served(box, "/2/users/:id/following")
    assert actual / 2 <= est.requests <= actual * 2


# --- the model, without a sandbox --------------------------------------------------------

def creds(users: int, apps: int = 0) -> list:
    entries = [{"alias": f"u{i}", "app_key": f"k{i}", "app_secret": "s", "oauth_token": f"t{i}", "oauth_token_secret": "s"}
               for i in range(users)]
    entries += [{"alias": f"a{i}", "bearer_token": f"b{i}"} for i in range(apps)]
    return parse_credentials(entries)


def test_quota_windows_and_time():
    seeds = {i: Counts(i, friends=500) for i in range(1, 101)}  # 100 seeds, one ids page each
    job = FriendsSpider.parse_arguments({"user_id": ",".join(map(str, seeds)), "api": "1.1"})
    est = estimate(job, creds(2), seeds)
    [ep] = est.endpoints
    assert (ep.requests, ep.lanes, ep.per_window, ep.windows) == (100, 2, 30, 4)
    assert est.seconds == 3 * 900  # three waits for the window to renew
    assert "100 requests, 4 quota window(s) on /friends/ids (2 credential lane(s), 30 requests per 15 min): 45 m 0 s" in est.summary(0)
    # more credentials, fewer windows; an app-only lane counts its own limit
    assert estimate(job, creds(4, apps=1), seeds).windows == 2
    # what is left once some requests were made (scrapy status)
    left = est.after({"/friends/ids": 70})
    assert left.requests == 30 and left.windows == 1 and left.seconds == 0
    assert est.after(85).requests == 15 and est.after(500).requests == 0
    assert est.usd == 100 * 500 * 0.010 and est.after(70).usd == 30 * 500 * 0.010  # dollars left, in proportion


def test_network_levels_and_caps():
    seeds = {1: Counts(1, friends=2500, followers=10), 2: Counts(2, friends=100, protected=True)}
    job = FriendsSpider.parse_arguments({"user_id": "1,2,3", "depth": "2", "max_users": "1000"})
    est = estimate(job, creds(1), seeds)
    # level 1: seed 1 (2,500 friends: 3 pages of 1,000 at 95 %), protected 2 and unknown 3 (one request each)
    assert est.levels == [3, 997] and est.users == 1000
    # no sample: level 2 is assumed to look like the seeds (3, 1 and 1 pages)
    assert est.endpoints[0].requests == 3 + 1 + 1 + round(997 * 5 / 3)
    assert any("extrapolated from the seeds" in n for n in est.notes)
    # a sample of level 2: 200 friends each (one page), one in ten protected
    sample = [Counts(10 + i, friends=200, protected=i % 10 == 0) for i in range(100)]
    deep = FriendsSpider.parse_arguments({"user_id": "1", "depth": "3"})
    est = estimate(deep, creds(1), seeds, sample=sample)
    assert est.levels == [1, 2500, round(2500 * 180)]
    assert est.endpoints[0].requests == 3 + 2500 + round(2500 * 180)
    assert any("a sample of 100 accounts" in n for n in est.notes)
    followers = FollowersSpider.parse_arguments({"user_id": "1", "api": "1.1"})
    assert estimate(followers, creds(1), seeds).endpoints[0].requests == 1


def test_timeline_search_and_lookups():
    seeds = {1: Counts(1, statuses=10_000), 2: Counts(2, statuses=0)}
    v11 = TimelineSpider.parse_arguments({"user_id": "1,2", "api": "1.1"})
    # 3,200 reachable tweets in pages of 200 (at 95 %) plus the empty last page; an empty timeline is one page
    assert estimate(v11, creds(1), seeds).endpoints[0].requests == math.ceil(3200 / 190) + 1 + 1
    v2 = TimelineSpider.parse_arguments({"user_id": "1,2", "max_tweets": "250"})
    est = estimate(v2, creds(1), seeds)
    assert est.endpoints[0].requests == 3 + 1 and est.tweets == 250
    from tweetform.spiders.lookup import TweetsSpider, UsersSpider
    from tweetform.spiders.search import SearchSpider

    users = UsersSpider.parse_arguments({"user_id": ",".join(str(i) for i in range(1, 251))})
    assert {e.endpoint: e.requests for e in estimate(users, creds(1), {}).endpoints} == {"/2/users": 3}
    names = UsersSpider.parse_arguments({"screen_name": "a,b", "api": "1.1"})
    assert {e.endpoint: e.requests for e in estimate(names, creds(1), {}).endpoints} == {"/users/lookup": 1}
    tweets = TweetsSpider.parse_arguments({"tweet_id": ",".join(str(i) for i in range(1, 101))})
    assert estimate(tweets, creds(1), {}).endpoints[0].requests == 1
    search = SearchSpider.parse_arguments({"query": "data", "archive": "true", "max_tweets": "5000"})
    est = estimate(search, creds(2), {})  # full-archive search is app-only: user credentials serve it through their apps
    assert (est.endpoints[0].lanes, est.endpoints[0].per_window) == (2, 600)
    est = estimate(search, creds(0, apps=1), {})
    assert est.endpoints[0].requests == math.ceil(5000 / 475) and est.endpoints[0].per_window == 300
    assert any("no configured credential" in n for n in estimate(search, [], {}).notes)
    unknown = SearchSpider.parse_arguments({"query": "data"})
    assert not estimate(unknown, creds(1), {}).exact


def test_planner_and_sandbox_read_one_limits_table(monkeypatch):
    """One rate-limit table (tweetform/api/limits.py): the 2026 defaults, and a change to it reaches both sides."""
    from tweetform.api import limits
    from tweetform.planning import capacity
    from tweetform.sandbox.limits import RateLimiter

    assert limits.limits_of("/2/users/:id/following") == (300, 300) and limits.limits_of("/2/tweets") == (5_000, 3_500)
    assert capacity("/2/users/:id/tweets", creds(1, apps=1)) == (2, 900 + 10_000)
    monkeypatch.setitem(limits.LIMITS, "/2/users/:id/following", (7, 11))
    assert capacity("/2/users/:id/following", creds(1, apps=1)) == (2, 7 + 11)
    sandbox = RateLimiter()
    assert (sandbox.limit_for("/2/users/:id/following", "user"), sandbox.limit_for("/2/users/:id/following", "app")) == (7, 11)


def test_plan_in_dollars_within_a_quarter_of_what_the_sandbox_bills(box, tmp_path: Path):
    """A depth-2 network: the plan's dollars (UTC-day dedupe of overlapping lists) against the ledger of the crawl."""
    ex = box.get("/_sandbox/examples")
    for spider, seed in (("friends", ex["ordinary"][0]), ("friends", ex["ordinary"][1]), ("followers", ex["ordinary"][2])):
        result = plan(box, spider, "-a", f"user_id={seed}", "-a", "depth=2", "--json")
        assert result.returncode == 0, result.stderr
        est = json.loads(result.stdout)
        box.reset()  # the plan's own look-up and sample were billed too
        crawl = run_crawl(box, spider, tmp_path / f"{spider}{seed}", user_id=seed, depth=2)
        assert crawl.returncode == 0, crawl.stderr[-2000:]
        billed = box.get("/_sandbox/billing")["total_usd"]
        assert billed > 0 and abs(est["usd"] - billed) <= 0.25 * billed, (spider, seed, est["usd"], billed)
        assert est["resources"]["follow"] > 0 and "level_usd" in est


def test_plan_budget_says_how_deep_and_how_many_users(box, tmp_path: Path, capsys):
    ex = box.get("/_sandbox/examples")
    seed = ex["ordinary"][1]
    full = json.loads(plan(box, "friends", "-a", f"user_id={seed}", "-a", "depth=2", "--json").stdout)
    level1, level2 = full["level_usd"][:2]
    budget = round(level1 + level2 / 2, 2)
    code, out, err = plan_here(box, "friends", [f"user_id={seed}", "depth=2"], capsys, budget=budget)
    assert code == 0, err
    [line] = [l for l in out.splitlines() if l.startswith("budget: ")]
    match = re.search(r"covers depth 1 completely .* about ([\d,]+) of the ≈ ([\d,]+) users of level 2: "
                      r"depth=1, or depth=2 with max_users=([\d,]+)", line)
    assert match, line
    assert "cost: ≈ $" in out and "each resource once per app and UTC day" in out
    max_users = int(match.group(3).replace(",", ""))
    box.reset()
    crawl = run_crawl(box, "friends", tmp_path / "d1", user_id=seed, depth=1)
    assert crawl.returncode == 0 and box.get("/_sandbox/billing")["total_usd"] <= budget  # depth 1 fits: exact
    box.reset()
    crawl = run_crawl(box, "friends", tmp_path / "d2", user_id=seed, depth=2, max_users=max_users)
    assert crawl.returncode == 0, crawl.stderr[-2000:]
    # the users of level 2 are costed at the sample's mean list; the first max_users in BFS order vary around it
    assert abs(box.get("/_sandbox/billing")["total_usd"] - budget) <= 0.5 * budget
    code, out, err = plan_here(box, "friends", [f"user_id={seed}", "depth=2"], capsys, budget=1000)
    assert "the whole job (depth 2) fits in $1,000.00" in out
