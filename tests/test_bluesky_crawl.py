"""``-a api=bluesky``: real ``scrapy crawl`` processes against the sandbox's Bluesky face,
their output compared with the face's ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crawling import bucket, errors_of, run_crawl

from tweetform import exitcodes


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
    assert prov["credential"] == "ip:direct" and prov["key"] == seed


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
