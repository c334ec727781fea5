"""``scrapy plan … -a api=bluesky``: requests and time before a Bluesky crawl, $0, checked against the
requests the crawl then made (the sandbox's per-IP counters)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import SMALL_WORLD
from test_bluesky_crawl import bluesky_crawl

from crawling import ROOT, crawl_env
from tweetform import exitcodes
from tweetform.sandbox.credentials import DEMO_BLUESKY_ACCOUNTS


def plan(box: Any, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "PYTHONWARNINGS": "error", "TWEETFORM_BLUESKY_APPVIEW": box.base,
            "TWEETFORM_BLUESKY_PDS": box.base, "TWEETFORM_API_BASE": "http://127.0.0.1:9"}  # no X credentials, X never asked
    return subprocess.run([sys.executable, "-m", "scrapy", "plan", *args], cwd=ROOT, env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=120)


def served(box: Any) -> int:
    """Requests the face served since the last reset, every IP lane and method together."""
    return sum(lane["served"] + lane["rate_limited"] for lane in box.get("/_sandbox/bsky/counters")["lanes"])


def seeds(box: Any) -> list[str]:
    """Two demo accounts (follows in the tens) and an ordinary world account, as DIDs."""
    accounts = box.get("/_sandbox/truth/bsky/accounts")
    ordinary = box.get("/_sandbox/examples")["ordinary"][0]
    return [accounts[0]["did"], accounts[2]["did"], box.get(f"/_sandbox/truth/bsky/did?ids={ordinary}")["dids"][str(ordinary)]]


@pytest.mark.parametrize("spider", ["friends", "followers"])
def test_depth_2_plan_within_a_quarter_of_the_crawl(sandbox_factory: Any, tmp_path: Path, spider: str) -> None:
    box = sandbox_factory(*SMALL_WORLD)
    dids = ",".join(seeds(box))
    done = plan(box, spider, "-a", "api=bluesky", "-a", f"user_id={dids}", "-a", "depth=2", "--json")
    assert done.returncode == exitcodes.DONE, done.stderr
    est = json.loads(done.stdout)
    assert est["api"] == "bluesky" and est["usd"] == 0 and est["resources"] == {} and not est["exact"]
    assert est["lookup_requests"] == 1 and est["sample_requests"] >= 2  # one getProfiles; a list page and its profiles
    assert "extrapolated from a sample of" in est["basis"]
    low, high = est["requests_range"]
    box.reset()
    crawl = bluesky_crawl(box, spider, tmp_path, user_id=dids, depth=2)
    assert crawl.returncode == 0, crawl.stderr[-3000:]
    actual = served(box)
    assert actual > 30  # a crawl of some size
    assert abs(est["requests"] - actual) <= 0.25 * actual, (est["requests"], actual)
    assert low <= actual <= high, (low, actual, high)


def test_timeline_and_lookups_plans_equal_the_crawls(sandbox_factory: Any, tmp_path: Path) -> None:
    box = sandbox_factory(*SMALL_WORLD)
    accounts = box.get("/_sandbox/truth/bsky/accounts")
    handle = accounts[0]["handle"]
    done = plan(box, "timeline", "-a", "api=bluesky", "-a", f"screen_name={handle}", "-a", "max_tweets=250", "--json")
    assert done.returncode == exitcodes.DONE, done.stderr
    est = json.loads(done.stdout)
    assert {e["endpoint"]: e["requests"] for e in est["endpoints"]} == {"com.atproto.identity.resolveHandle": 1,
                                                                        "app.bsky.feed.getAuthorFeed": 3}
    box.reset()
    assert bluesky_crawl(box, "timeline", tmp_path / "t", screen_name=handle, max_tweets=250).returncode == 0
    assert served(box) == est["requests"]

    follows = box.get(f"/_sandbox/truth/bsky/follows/{accounts[0]['did']}")["dids"] * 4  # repeated: counted once
    users = plan(box, "users", "-a", "api=bluesky", "-a", f"user_id={','.join(follows[:60])}", "--json")
    assert users.returncode == exitcodes.DONE, users.stderr
    assert json.loads(users.stdout)["requests"] == -(-len(set(follows[:60])) // 25)

    # collections: the seed posts' counts (getPosts) size their lists; a thread is one answer
    uris = ",".join(t["uri"] for t in box.get(f"/_sandbox/truth/bsky/feed/{accounts[0]['did']}")["items"][:30])
    for spider in ("quotes", "liking_users", "conversation"):
        done = plan(box, spider, "-a", "api=bluesky", "-a", f"tweet_id={uris}", "--json")
        assert done.returncode == exitcodes.DONE, done.stderr
        box.reset()
        assert bluesky_crawl(box, spider, tmp_path / spider, tweet_id=uris).returncode == 0
        assert served(box) == json.loads(done.stdout)["requests"], spider


def test_plan_text_says_free_paced_by_the_rate_and_refuses_a_budget(sandbox_factory: Any) -> None:
    # a host that publishes no ratelimit-* headers: the pace is TWEETFORM_BLUESKY_RATE per 5 minutes, per IP lane
    box = sandbox_factory(*SMALL_WORLD, "--bluesky", "ratelimit_headers=false")
    did = seeds(box)[0]
    proxies = "http://127.0.0.1:9,http://127.0.0.1:10"  # two lanes (the plan's own look-ups go direct)
    done = plan(box, "friends", "-a", "api=bluesky", "-a", f"user_id={did}", "-a", "depth=3",
                env={"TWEETFORM_BLUESKY_RATE": "20", "ROTATING_PROXY_LIST": proxies})
    assert done.returncode == exitcodes.DONE, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].endswith("; Bluesky)") and "cost: $0 (Bluesky's public API is free)" in lines
    [seed_line] = [line for line in lines if line.startswith("seeds (1 app.bsky.actor.getProfiles request(s)): ")]
    assert seed_line.endswith(" posts")  # Bluesky's word (postsCount), not X's tweets
    handle = box.get("/_sandbox/truth/bsky/accounts")[0]["handle"]
    by_handle = plan(box, "friends", "-a", "api=bluesky", "-a", f"screen_name={handle}")
    rows = [line for line in by_handle.stdout.splitlines() if line.startswith("  ")]  # the methods' table lines up
    assert len(rows) == 2 and len({row.index(" requests") for row in rows}) == 1, rows
    [estimate] = [line for line in lines if line.startswith("estimate: ≈ ")]
    # as the quota book paces 20 per 5 minutes: 4 slices of 75 s, 4 requests each (quota.book.pace_slices)
    assert "(2 IP lane(s), 8 requests per 1.25 min)" in estimate and "window(s)" in estimate
    assert any("paced by TWEETFORM_BLUESKY_RATE (20 per 5 min" in line for line in lines)
    assert any(line.startswith("basis: level 1 exact") and "requests" in line for line in lines)
    refused = plan(box, "friends", "-a", "api=bluesky", "-a", f"user_id={did}", "--budget", "5")
    assert refused.returncode == exitcodes.BAD_INPUT and refused.stdout == ""
    assert refused.stderr.strip().splitlines() == ["tweetform: --budget: Bluesky's API is free, a budget has nothing to bound: "
                                                   "leave --budget out for api=bluesky"]


def test_plan_names_seeds_that_do_not_exist(sandbox_factory: Any) -> None:
    """A handle no account has and a post the AppView does not return are said in a note, not silently
    dropped from the seeds (the crawl writes an errors record for each)."""
    box = sandbox_factory(*SMALL_WORLD)
    accounts = box.get("/_sandbox/truth/bsky/accounts")
    done = plan(box, "friends", "-a", "api=bluesky", "-a", f"screen_name=nobody-here.sandbox.test,{accounts[0]['handle']}")
    assert done.returncode == exitcodes.DONE, done.stderr
    assert ("note: 1 handle(s) no account has (nobody-here.sandbox.test): each costs its resolveHandle only and is an "
            "errors record") in done.stdout.splitlines()
    real = box.get(f"/_sandbox/truth/bsky/feed/{accounts[0]['did']}")["items"][0]["uri"]
    gone = "at://did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/app.bsky.feed.post/3mz2vrdtf3uae"  # a DID the sandbox never issued
    for spider in ("retweeted_by", "cascade"):
        done = plan(box, spider, "-a", "api=bluesky", "-a", f"tweet_id={gone},{real}")
        assert done.returncode == exitcodes.DONE, done.stderr
        assert (f"note: 1 seed post(s) the AppView did not return (deleted, taken down or missing: {gone}): each is an "
                "errors record, nothing to list") in done.stdout.splitlines(), done.stdout


def test_search_plan_when_createsession_answers_a_cut_body_is_no_traceback(sandbox_factory: Any) -> None:
    """Every answer cut short (the sandbox's truncate fault): the plan's login reads no session and the plan
    says it has no sample, in its ordinary lines (it was a JSONDecodeError traceback)."""
    box = sandbox_factory(*SMALL_WORLD)
    box.post("/_sandbox/faults", {"truncate": 1})
    account = DEMO_BLUESKY_ACCOUNTS[0]
    done = plan(box, "search", "-a", "api=bluesky", "-a", "query=the",
                env={"TWEETFORM_CREDENTIALS": json.dumps([account.as_settings()])})
    cut = plan(box, "friends", "-a", "api=bluesky", "-a", f"user_id={seeds(box)[0]}")  # getProfiles cut short: one line
    box.post("/_sandbox/faults", {"truncate": 0})
    assert cut.returncode == exitcodes.UNREACHABLE and cut.stderr.strip().splitlines() == [
        "tweetform: app.bsky.actor.getProfiles answered HTTP 200 with a body that is not JSON (cut short?): the estimate is "
        "not possible now; run it again"], cut.stderr
    assert done.returncode == exitcodes.DONE and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert any(line.startswith("note: search volume is unknown before searching") for line in done.stdout.splitlines())
    assert box.counters()["faults"]["truncate"] >= 1  # the login's answer was cut


def test_push_plan_stores_the_bluesky_plan_with_the_job(sandbox_factory: Any, redis_url: str) -> None:
    """``scrapy push … --api bluesky --plan``: the job's plan in Redis is the free Bluesky plan, and push says how many
    requests the plan made (free), not a dollar spend counted in the job's."""
    import redis as redis_lib

    from tweetform.state.redis import keys

    box = sandbox_factory(*SMALL_WORLD)
    did = seeds(box)[0]
    done = plan(box, "friends", "-a", "api=bluesky", "-a", f"user_id={did}", "-a", "depth=2", "--json")
    assert done.returncode == exitcodes.DONE, done.stderr
    planned = json.loads(done.stdout)  # the same plan, as scrapy plan makes it
    base = {"PATH": "/usr/bin:/bin", "PYTHONWARNINGS": "error", "TWEETFORM_BLUESKY_APPVIEW": box.base,
            "TWEETFORM_BLUESKY_PDS": box.base, "TWEETFORM_API_BASE": "http://127.0.0.1:9", "REDIS_URL": redis_url}
    pushed = subprocess.run([sys.executable, "-m", "scrapy", "push", "friends", "--api", "bluesky", "--user-id", did,
                             "--depth", "2", "--plan", "--job", "bp-1"], cwd=ROOT, env=base, capture_output=True, text=True,
                            timeout=120)
    assert pushed.returncode == 0, pushed.stderr[-2000:]
    lines = pushed.stdout.splitlines()
    assert lines[0].startswith("plan: ≈ ") and lines[0].endswith("$0 (Bluesky's public API is free)"), lines
    made = planned["lookup_requests"] + planned["sample_requests"]  # getProfiles, a list page, its accounts' profiles
    assert made >= 3 and lines[1] == f"this plan made {made} request(s), free like a crawl's", lines
    stored = json.loads(redis_lib.Redis.from_url(redis_url).hget(keys.job("bp-1"), "plan"))
    assert stored["api"] == "bluesky" and stored["usd"] == 0 and stored["requests"] == planned["requests"]


def test_search_plan_from_a_sample_page_within_a_quarter_of_the_crawl(sandbox_factory: Any, tmp_path: Path) -> None:
    """Without max_tweets the plan logs in with the first Bluesky account and reads one page's hitsTotal."""
    box = sandbox_factory(*SMALL_WORLD)
    creds = json.dumps([DEMO_BLUESKY_ACCOUNTS[0].as_settings()])
    done = plan(box, "search", "-a", "api=bluesky", "-a", "query=vote", "--json", env={"TWEETFORM_CREDENTIALS": creds})
    assert done.returncode == exitcodes.DONE, done.stderr
    est = json.loads(done.stdout)
    hits = len(box.get("/_sandbox/truth/bsky/search?q=vote")["uris"])
    assert est["tweets"] == hits and hits > 1000
    assert any(f"{hits:,} posts match" in note for note in est["notes"])
    [searches] = [e["requests"] for e in est["endpoints"] if e["endpoint"] == "app.bsky.feed.searchPosts"]
    box.reset()
    env = {**crawl_env(box, tmp_path, json.loads(creds)), "TWEETFORM_BLUESKY_APPVIEW": box.base, "TWEETFORM_BLUESKY_PDS": box.base}
    crawl = subprocess.run([sys.executable, "-m", "scrapy", "crawl", "search", "-a", "api=bluesky", "-a", "query=vote"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert crawl.returncode == 0, crawl.stderr[-3000:]
    actual = served(box) - box.get("/_sandbox/bsky/counters")["sessions_created"]  # the search pages
    assert abs(searches - actual) <= 0.25 * actual, (searches, actual)


def test_cascade_plan_within_a_quarter_of_the_crawl(sandbox_factory: Any, tmp_path: Path) -> None:
    """Level 1 from the seed posts' counts and threads, levels 2 and 3 from the sample's thread posts and quotes."""
    box = sandbox_factory(*SMALL_WORLD)
    author = box.get("/_sandbox/truth/bsky/did?ids=12")["dids"]["12"]
    uris = ",".join(box.get(f"/_sandbox/truth/bsky/engaged/{author}")["uris"][:3])
    done = plan(box, "cascade", "-a", "api=bluesky", "-a", f"tweet_id={uris}", "-a", "depth=3", "--json")
    assert done.returncode == exitcodes.DONE, done.stderr
    est = json.loads(done.stdout)
    assert len(est["levels"]) == 3 and est["levels"][0] == 3 and "extrapolated from a sample of" in est["basis"]
    low, high = est["requests_range"]
    box.reset()
    assert bluesky_crawl(box, "cascade", tmp_path, tweet_id=uris, depth=3).returncode == 0
    actual = served(box)
    assert actual > 100 and abs(est["requests"] - actual) <= 0.25 * actual, (est["requests"], actual)
    assert low <= actual <= high, (low, actual, high)
