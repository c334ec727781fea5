"""``-a api=bluesky``: real ``scrapy crawl`` processes against the sandbox's Bluesky face,
their output compared with the face's ground truth."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from conftest import SMALL_WORLD
from crawling import ROOT, bucket, crawl_env, errors_of, run_crawl

from tweetform import exitcodes
from tweetform.sandbox.credentials import DEMO_BLUESKY_ACCOUNTS


def bluesky_crawl(box: Any, spider: str, out: Path, **args: Any) -> Any:
    settings = {"TWEETFORM_BLUESKY_APPVIEW": box.base, "TWEETFORM_BLUESKY_PDS": box.base,
                "TWEETFORM_API_BASE": "http://127.0.0.1:9"}  # X's host is never asked
    return run_crawl(box, spider, out, credentials=[], settings=settings, api="bluesky", **args)


def demo_did(box: Any, n: int = 0) -> str:
    return box.get("/_sandbox/truth/bsky/accounts")[n]["did"]


def dids_of(pages: list[dict[str, Any]], member: str) -> list[str]:
    return [p["did"] for page in pages for p in page[member]]


def test_friends_depth_3_equals_truth(sandbox: Any, tmp_path: Path) -> None:
    seed = demo_did(sandbox)
    done = bluesky_crawl(sandbox, "friends", tmp_path, user_id=seed, depth=3)
    assert done.returncode == 0, done.stderr[-3000:]
    pages = bucket(tmp_path, "friend_ids")
    truth = sandbox.get(f"/_sandbox/truth/bsky/reachable?seeds={seed}&depth=3&direction=follows")["dids"]
    assert sorted(pages) == sorted(truth) and len(truth) > 50  # every user expanded once, nobody else
    for did in truth[:40]:  # each list as the AppView lists it (pages in order, short ones included)
        assert dids_of(pages[did], "follows") == sandbox.get(f"/_sandbox/truth/bsky/follows/{did}")["dids"]
    prov = pages[seed][0]["__tweetform"]
    assert prov["api_version"] == "bluesky" and prov["endpoint"] == "app.bsky.graph.getFollows"
    assert prov["url"].startswith(f"{sandbox.base}/xrpc/app.bsky.graph.getFollows?actor=")
    assert prov["credential"] == f"ip:direct:{socket.gethostname()}" and prov["key"] == seed


def test_followers_by_handle_with_users_and_max_users_equal_truth(sandbox: Any, tmp_path: Path) -> None:
    handle = sandbox.get("/_sandbox/truth/bsky/accounts")[1]["handle"]
    seed = demo_did(sandbox, 1)
    done = bluesky_crawl(sandbox, "followers", tmp_path, screen_name=f"{handle},nobody-here.sandbox.test",
                         depth=3, max_users=40, data_type="users")
    assert done.returncode == 0, done.stderr[-3000:]
    pages = bucket(tmp_path, "followers")
    truth = sandbox.get(f"/_sandbox/truth/bsky/reachable?seeds={seed}&depth=3&direction=followers&max_users=40")["dids"]
    assert sorted(pages) == sorted(truth) and len(truth) == 40  # exactly the first 40 in BFS order
    for did in truth:
        assert dids_of(pages[did], "followers") == sandbox.get(f"/_sandbox/truth/bsky/followers/{did}")["dids"]
        assert all("handle" in p and "displayName" in p for page in pages[did] for p in page["followers"])
    assert errors_of(tmp_path) == {"nobody-here.sandbox.test": "not_found"}


def test_accounts_that_are_not_active_go_to_the_errors_bucket(sandbox: Any, tmp_path: Path) -> None:
    ex = sandbox.get("/_sandbox/examples")
    dids = sandbox.get("/_sandbox/truth/bsky/did?ids=" + ",".join(str(ex[k][0]) for k in ("protected", "suspended", "deleted")))["dids"]
    done = bluesky_crawl(sandbox, "friends", tmp_path, user_id=",".join(dids.values()))
    assert done.returncode in (0, exitcodes.DONE), done.stderr[-3000:]
    assert not bucket(tmp_path, "friend_ids")
    assert errors_of(tmp_path) == {d: "not_found" for d in dids.values()}  # "Actor not found: <did>"


def test_bad_bluesky_input_is_one_line(sandbox: Any, tmp_path: Path) -> None:
    cases = [
        ({"user_id": "12345"}, "user_id '12345' is not a DID"),
        ({"user_id": "did:plc:../../etc/passwd"}, "is not a DID"),
        ({"screen_name": "not a handle"}, "is not a Bluesky handle"),
        ({"user_id": demo_did(sandbox), "budget": "5"}, "Bluesky's API is free"),
    ]
    for args, expected in cases:
        done = bluesky_crawl(sandbox, "friends", tmp_path / "out", **args)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == exitcodes.BAD_INPUT and len(lines) == 1 and expected in lines[0], (args, done.stderr[-2000:])
    assert not (tmp_path / "out").exists()


def test_preflight_probes_the_bluesky_host_not_x(sandbox: Any, tmp_path: Path) -> None:
    # X's host answers, the AppView does not: the crawl stops at once, naming the AppView's setting
    done = run_crawl(sandbox, "friends", tmp_path, credentials=[], api="bluesky", user_id=demo_did(sandbox),
                     settings={"TWEETFORM_BLUESKY_APPVIEW": "http://127.0.0.1:9", "TWEETFORM_API_BASE": sandbox.base})
    lines = done.stderr.strip().splitlines()
    assert done.returncode == exitcodes.BAD_INPUT and len(lines) == 1
    assert lines[0].startswith("tweetform: TWEETFORM_BLUESKY_APPVIEW http://127.0.0.1:9 cannot be reached")


def test_timeline_users_and_posts_equal_truth(sandbox: Any, tmp_path: Path) -> None:
    accounts = sandbox.get("/_sandbox/truth/bsky/accounts")
    seed = accounts[0]["did"]
    done = bluesky_crawl(sandbox, "timeline", tmp_path, user_id=seed)
    assert done.returncode == 0, done.stderr[-3000:]
    feed = [item for page in bucket(tmp_path, "timelines")[seed] for item in page["feed"]]
    got = [{"uri": i["post"]["uri"], "repost": i["reason"]["uri"] if "reason" in i else None} for i in feed]
    assert got == sandbox.get(f"/_sandbox/truth/bsky/feed/{seed}")["items"] and len(got) > 100
    assert all(page["__tweetform"]["api_version"] == "bluesky" for page in bucket(tmp_path, "timelines")[seed])

    no_replies = bluesky_crawl(sandbox, "timeline", tmp_path / "f", user_id=seed, filter="posts_no_replies", max_tweets=30)
    assert no_replies.returncode == 0, no_replies.stderr[-3000:]
    items = [i for page in bucket(tmp_path / "f", "timelines")[seed] for i in page["feed"]]
    truth = sandbox.get(f"/_sandbox/truth/bsky/feed/{seed}?filter=posts_no_replies")["items"]
    assert [i["post"]["uri"] for i in items] == [t["uri"] for t in truth[: len(items)]] and 30 <= len(items) < 130

    # users: DIDs and handles, 25 a request; the AppView drops the missing one silently, the crawl does not
    follows = sandbox.get(f"/_sandbox/truth/bsky/follows/{seed}")["dids"]
    wanted = [*follows[:30], accounts[1]["did"]]
    users = bluesky_crawl(sandbox, "users", tmp_path / "u", user_id=",".join(wanted))
    assert users.returncode == 0, users.stderr[-3000:]
    got_users = [p["did"] for page in bucket(tmp_path / "u", "users").values() for line in page for p in line["profiles"]]
    assert sorted(got_users) == sorted(wanted)
    handles = bluesky_crawl(sandbox, "users", tmp_path / "h", screen_name=f"{accounts[2]['handle']},gone-away.sandbox.test")
    assert handles.returncode == 0
    assert [p["did"] for page in bucket(tmp_path / "h", "users").values() for line in page for p in line["profiles"]] == [accounts[2]["did"]]
    assert errors_of(tmp_path / "h") == {"gone-away.sandbox.test": "not_found_or_suspended"}

    # posts by at:// URI, 25 a request; a URI of a post that never was is recorded
    uris = [t["uri"] for t in sandbox.get(f"/_sandbox/truth/bsky/feed/{seed}")["items"][:40]]
    missing = f"at://{seed}/app.bsky.feed.post/3aaaaaaaaaaaa"
    posts = bluesky_crawl(sandbox, "tweets", tmp_path / "p", tweet_id=",".join([*uris, missing]))
    assert posts.returncode == 0, posts.stderr[-3000:]
    got_posts = [p["uri"] for page in bucket(tmp_path / "p", "tweets").values() for line in page for p in line["posts"]]
    assert sorted(got_posts) == sorted(set(uris))
    assert errors_of(tmp_path / "p") == {missing: "not_found_or_deleted"}


def test_search_with_a_session_that_expires_mid_crawl_equals_truth_and_leaks_nothing(sandbox_factory: Any, tmp_path: Path) -> None:
    box = sandbox_factory(*SMALL_WORLD, "--latency", "0.15")
    account = DEMO_BLUESKY_ACCOUNTS[0]
    truth = box.get("/_sandbox/truth/bsky/search?q=the")["uris"]  # also builds the index before the crawl
    env = crawl_env(box, tmp_path / "out", [account.as_settings()])
    env.update(TWEETFORM_BLUESKY_APPVIEW=box.base, TWEETFORM_BLUESKY_PDS=box.base)
    cmd = [sys.executable, "-m", "scrapy", "crawl", "search", "-L", "DEBUG", "-a", "api=bluesky", "-a", "query=the",
           "-a", "max_tweets=1500"]
    with open(tmp_path / "log", "w") as log:
        crawl = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            while box.get("/_sandbox/bsky/counters")["sessions_created"] < 1 or box.counters()["requests"] < 4:
                assert crawl.poll() is None, (tmp_path / "log").read_text()[-3000:]
                time.sleep(0.05)
            box.post("/_sandbox/clock", {"advance": 7300})  # past the access token's 2 hours (the world is the same)
            assert crawl.wait(240) == 0, (tmp_path / "log").read_text()[-3000:]
        finally:
            crawl.kill() if crawl.poll() is None else None
    pages = next(iter(bucket(tmp_path / "out", "search").values()))
    got = [p["uri"] for page in pages for p in page["posts"]]
    assert len(got) >= 1500 and got == truth[: len(got)]
    log = (tmp_path / "log").read_text()
    assert "'tweetform/bluesky/expired_tokens': " in log  # the session expired mid-crawl, and was renewed
    counters = box.get("/_sandbox/bsky/counters")
    assert counters["sessions_created"] + counters["sessions_refreshed"] >= 2
    secrets = [account.app_password, *box.get("/_sandbox/bsky/tokens")["tokens"]]
    # every file under the output directory, the job's queue and state database too (bytes as latin-1: ASCII secrets show)
    written = "".join(p.read_bytes().decode("latin-1") for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert len(secrets) >= 3 and not [s for s in secrets if s in log or s in written]


def test_an_account_given_inline_and_in_the_credentials_file_logs_in_once(sandbox_factory: Any, tmp_path: Path) -> None:
    """The sandbox prints ``export TWEETFORM_CREDENTIALS_FILE=…`` and the README's search example gives the same
    demo account inline: it is one account (one session), not two taking turns, each logging in for a page."""
    box = sandbox_factory(*SMALL_WORLD)
    account = DEMO_BLUESKY_ACCOUNTS[0]
    (tmp_path / "creds.json").write_text(json.dumps([a.as_settings() for a in DEMO_BLUESKY_ACCOUNTS]))
    env = crawl_env(box, tmp_path / "out", [account.as_settings()])
    env.update(TWEETFORM_BLUESKY_APPVIEW=box.base, TWEETFORM_BLUESKY_PDS=box.base,
               TWEETFORM_CREDENTIALS_FILE=str(tmp_path / "creds.json"))
    done = subprocess.run([sys.executable, "-m", "scrapy", "crawl", "search", "-L", "INFO", "-a", "api=bluesky",
                           "-a", "query=the", "-a", "max_tweets=300"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    pages = next(iter(bucket(tmp_path / "out", "search").values()))
    assert len(pages) == 3  # three searchPosts pages, each signed with a session
    counters = box.get("/_sandbox/bsky/counters")
    # the inline demo-bsky-1 and the file's demo-bsky-2 and -3: each logs in once at most
    assert counters["sessions_created"] <= len(DEMO_BLUESKY_ACCOUNTS), counters["sessions_created"]
    assert done.stderr.count(f"Bluesky account {account.alias!r} logged in") == 1
