"""Every spider on both API versions, crawling the sandbox: output equals ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from crawling import bucket, errors_of, ids_of, run_crawl

# generous limits so these tests measure correctness, not waiting
FAST = ("--users", "3000", "--seed", "7", "--window", "1", "--limit", "/friends/ids=200", "--limit", "/followers/ids=200",
        "--limit", "/friends/list=200", "--limit", "/followers/list=200", "--limit", "/2/users/:id/following=200",
        "--limit", "/2/users/:id/followers=200")


@pytest.fixture
def box(sandbox_factory):
    return sandbox_factory(*FAST)


@pytest.fixture
def examples(box):
    return box.get("/_sandbox/examples")


def ok(result) -> None:
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("api", ["2", "1.1"])
@pytest.mark.parametrize("direction,bucket_name", [("friends", "friend_ids"), ("followers", "follower_ids")])
def test_network_depth1_equals_truth(box, examples, tmp_path: Path, api, direction, bucket_name):
    seed = examples["many_followers"][0] if direction == "followers" else examples["ordinary"][0]
    ok(run_crawl(box, direction, tmp_path, user_id=seed, api=api))
    pages = bucket(tmp_path, bucket_name)
    assert list(pages) == [str(seed)]
    truth = box.truth("following" if direction == "friends" else "followers", seed)
    assert ids_of(pages[str(seed)]) == truth
    prov = pages[str(seed)][0]["__tweetform"]
    assert prov["api_version"] == api and prov["credential"] and prov["source_user_id"] == str(seed)


@pytest.mark.parametrize("api", ["2", "1.1"])
@pytest.mark.parametrize("depth,max_users", [(2, 25), (3, 60)])
def test_network_depth_with_max_users(box, examples, tmp_path: Path, api, depth, max_users):
    seed = examples["ordinary"][0]
    ok(run_crawl(box, "friends", tmp_path, user_id=seed, depth=depth, max_users=max_users, api=api))
    expected = box.get(f"/_sandbox/truth/reachable?seeds={seed}&depth={depth}&direction=friends&max_users={max_users}")["ids"]
    pages = bucket(tmp_path, "friend_ids")
    errors = errors_of(tmp_path)
    # every expanded user has either its complete list or an error record (protected)
    assert set(pages) | {k for k, v in errors.items() if v == "protected"} == {str(u) for u in expected}
    for key, lines in pages.items():
        assert ids_of(lines) == box.truth("following", int(key)), key
    # no page written twice
    for lines in pages.values():
        ids = [line["__tweetform"]["page_id"] for line in lines]
        assert len(ids) == len(set(ids))


@pytest.mark.parametrize("api", ["2", "1.1"])
def test_friends_users_data_type(box, examples, tmp_path: Path, api):
    seed = examples["ordinary"][1]
    ok(run_crawl(box, "friends", tmp_path, user_id=seed, data_type="users", api=api))
    pages = bucket(tmp_path, "friends")
    assert ids_of(pages[str(seed)]) == box.truth("following", seed)
    first = pages[str(seed)][0]
    user = (first.get("users") or first.get("data"))[0]
    assert "screen_name" in user or "public_metrics" in user


@pytest.mark.parametrize("api", ["2", "1.1"])
def test_account_errors_recorded_not_retried(box, examples, tmp_path: Path, api):
    seeds = [examples["protected"][0], examples["suspended"][0], examples["deleted"][0]]
    ok(run_crawl(box, "friends", tmp_path, user_id=",".join(map(str, seeds)), api=api))
    errors = errors_of(tmp_path)
    assert errors[str(seeds[0])] == "protected"
    assert errors[str(seeds[1])] == "suspended"
    assert errors[str(seeds[2])] == "not_found"
    assert bucket(tmp_path, "friend_ids") == {}
    served = sum(c["served"] for c in box.counters()["limits"])
    assert served == 3  # one request each, none retried


@pytest.mark.parametrize("api", ["2", "1.1"])
def test_timeline_past_3200(box, examples, tmp_path: Path, api):
    uid = examples["long_timeline"][0]
    ok(run_crawl(box, "timeline", tmp_path, user_id=uid, api=api))
    truth = box.get(f"/_sandbox/truth/timeline/{uid}")
    assert truth["total"] > 3200
    got = ids_of(bucket(tmp_path, "timelines")[str(uid)])
    assert got == truth["ids"] and len(got) == 3200


@pytest.mark.parametrize("api", ["2", "1.1"])
def test_timeline_since_id_and_max_tweets(box, examples, tmp_path: Path, api):
    uid = examples["long_timeline"][1]
    truth = box.get(f"/_sandbox/truth/timeline/{uid}")["ids"]
    ok(run_crawl(box, "timeline", tmp_path / "a", user_id=uid, api=api, since_id=truth[250]))
    assert ids_of(bucket(tmp_path / "a", "timelines")[str(uid)]) == truth[:250]
    ok(run_crawl(box, "timeline", tmp_path / "b", user_id=uid, api=api, max_tweets=300))
    got = ids_of(bucket(tmp_path / "b", "timelines")[str(uid)])
    assert got == truth[:300]


@pytest.mark.parametrize("api", ["2", "1.1"])
def test_search_equals_truth(box, tmp_path: Path, api):
    truth = box.get("/_sandbox/truth/search?query=data")["ids"]
    assert len(truth) > 100
    ok(run_crawl(box, "search", tmp_path, query="data", api=api))
    pages = bucket(tmp_path, "search")
    assert len(pages) == 1
    assert ids_of(next(iter(pages.values()))) == truth


def test_search_full_archive(box, tmp_path: Path):
    truth = box.get("/_sandbox/truth/search?query=research%20data&archive=1")["ids"]
    ok(run_crawl(box, "search", tmp_path, query="research data", archive="true", api="2"))
    assert ids_of(next(iter(bucket(tmp_path, "search").values()))) == truth


@pytest.mark.parametrize("api", ["2", "1.1"])
def test_users_lookup_accounts_for_every_id(box, examples, tmp_path: Path, api):
    visible = examples["ordinary"][:3] + examples["protected"][:1]
    missing = examples["suspended"][:1] + examples["deleted"][:1]
    ok(run_crawl(box, "users", tmp_path, user_id=",".join(map(str, visible + missing)), api=api, job="lookup1"))
    got = ids_of(bucket(tmp_path, "users")["lookup1"])
    assert sorted(got) == sorted(visible)
    assert set(errors_of(tmp_path)) == {str(m) for m in missing}


@pytest.mark.parametrize("api", ["2", "1.1"])
def test_tweets_hydration(box, examples, tmp_path: Path, api):
    uid = examples["ordinary"][0]
    ids = box.get(f"/_sandbox/truth/timeline/{uid}")["ids"][:150]
    bogus = 1_500_000_000_000_000_000
    ok(run_crawl(box, "tweets", tmp_path, tweet_id=",".join(map(str, ids + [bogus])), api=api, job="hyd"))
    got = ids_of(bucket(tmp_path, "tweets")["hyd"])
    assert sorted(got) == sorted(ids)
    assert str(bogus) in errors_of(tmp_path)


@pytest.mark.parametrize(
    "args,message",
    [
        ({"user_id": "12", "colour": "red"}, "unknown argument 'colour'"),
        ({"user_id": "12x"}, "'12x' is not an id"),
        ({"user_id": "12", "depth": "0"}, "depth must be at least 1"),
        ({"user_id": "12", "bucket": "../etc"}, "bucket '../etc' must be a plain word"),
        ({"user_id": "12", "screen_name": "jack"}, "not both"),
        ({}, "give user_id, screen_name or file"),
    ],
)
def test_bad_arguments_one_line_nothing_fetched(box, tmp_path: Path, args, message):
    result = run_crawl(box, "friends", tmp_path / "out", **args)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "out").exists()
    assert box.counters()["requests"] == 0


def test_search_needs_query(box, tmp_path: Path):
    result = run_crawl(box, "search", tmp_path / "out")
    assert result.returncode == 2 and "search needs query" in result.stderr


def test_feed_export_still_works(box, examples, tmp_path: Path):
    feed = tmp_path / "feed.jsonl"
    ok(run_crawl(box, "friends", tmp_path / "out", user_id=examples["ordinary"][0], depth=2, max_users=5, cli=("-O", str(feed))))
    exported = [json.loads(line) for line in feed.read_text().splitlines()]
    written = [line for name in ("friend_ids", "errors") for lines in bucket(tmp_path / "out", name).values() for line in lines]
    key = lambda page: page["__tweetform"]["page_id"]  # noqa: E731
    assert sorted(exported, key=key) == sorted(written, key=key) and len(written) >= 5
