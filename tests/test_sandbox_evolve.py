"""The evolving world: between two crawls users gain tweets and followers and lose follows,
deterministically, as a function of the sandbox's logical clock; the ground truth answers for "now"."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tweetform.sandbox.world import World
from tweetform.sandbox.world.evolution import Evolution
from test_sandbox_api import SMALL, app_auth, body, call, user_auth, walk_cursor, walk_v2

DAY = 86_400


def v2_ids(pages: list[dict]) -> list[int]:
    return [int(x["id"]) for p in pages for x in p.get("data", [])]


def crawl(box: Any, uid: int) -> dict[str, list[int]]:
    """A user's lists and timeline as a client sees them, through v2 and v1.1."""
    auth = user_auth("demo-user-2")
    out = {
        "followers": v2_ids(walk_v2(box, f"/2/users/{uid}/followers", {"max_results": 1000}, auth, 1000, "pagination_token")),
        "following": v2_ids(walk_v2(box, f"/2/users/{uid}/following", {"max_results": 1000}, auth, 1000, "pagination_token")),
        "timeline": v2_ids(walk_v2(box, f"/2/users/{uid}/tweets", {"max_results": 100}, app_auth(), 100, "pagination_token")),
    }
    v1 = walk_cursor(box, "/1.1/followers/ids.json", {"user_id": uid, "count": 5000}, auth, "ids", 5000)
    assert [i for p in v1 for i in p["ids"]] == out["followers"]
    return out


def truth(box: Any, uid: int) -> dict[str, list[int]]:
    return {
        "followers": box.truth("followers", uid),
        "following": box.truth("following", uid),
        "timeline": box.truth("timeline", uid),
    }


def test_the_world_at_offset_zero_is_the_created_world(sandbox_factory: Any) -> None:
    box = sandbox_factory(*SMALL)
    clock = box.get("/_sandbox/clock")
    assert (clock["offset"], clock["generation"]) == (0, 0)
    world = World(seed=7, users=3000)
    for uid in (12, *box.get("/_sandbox/examples")["ordinary"]):
        assert truth(box, uid) == {"followers": list(world.followers(uid)), "following": list(world.following(uid)),
                                   "timeline": list(world.reachable_timeline(uid))}


def test_crawls_a_week_apart_see_the_changed_world(sandbox_factory: Any) -> None:
    box = sandbox_factory(*SMALL)
    examples = box.get("/_sandbox/examples")
    users = [12, examples["many_followers"][1], examples["ordinary"][0]]
    before = {uid: crawl(box, uid) for uid in users}
    assert before == {uid: truth(box, uid) for uid in users}
    newest = {uid: before[uid]["timeline"][0] for uid in users}

    moved = box.post("/_sandbox/clock", {"advance": 7 * DAY})
    assert moved["generation"] == 7 and moved["world_now"] > "2026-11-07"
    after = {uid: crawl(box, uid) for uid in users}
    assert after == {uid: truth(box, uid) for uid in users}  # the ground truth answers for "now"
    changed = {what for uid in users for what in after[uid] if after[uid][what] != before[uid][what]}
    assert changed == {"followers", "following", "timeline"}
    gained = set(after[12]["followers"]) - set(before[12]["followers"])
    assert gained and after[12]["followers"][: len(gained)] == [i for i in after[12]["followers"] if i in gained]
    for uid in users:
        fresh = [t for t in after[uid]["timeline"] if t > newest[uid]]  # new tweets are newer than every old one
        assert after[uid]["timeline"][len(fresh):] == before[uid]["timeline"][: 3200 - len(fresh)]
    # counts and lookups follow the lists
    metrics = body(call(box, "/2/users", {"ids": ",".join(map(str, users)), "user.fields": "public_metrics"}))["data"]
    for u in metrics:
        uid = int(u["id"])
        assert u["public_metrics"]["followers_count"] == len(after[uid]["followers"])
        assert u["public_metrics"]["following_count"] == len(after[uid]["following"])
    new_ids = [t for uid in users for t in after[uid]["timeline"] if t > newest[uid]][:5]
    assert new_ids
    looked_up = body(call(box, "/2/tweets", {"ids": ",".join(map(str, new_ids)), "tweet.fields": "created_at,author_id"}))["data"]
    assert [int(t["id"]) for t in looked_up] == new_ids and all(t["created_at"] > "2026-11-01" for t in looked_up)
    v1 = body(call(box, "/1.1/statuses/user_timeline.json", {"user_id": users[2], "count": 200}))
    assert [t["id"] for t in v1] == after[users[2]]["timeline"][:200]

    # the clock set back: exactly the world as it was
    box.post("/_sandbox/clock", {"offset": 0})
    assert {uid: truth(box, uid) for uid in users} == before


def test_evolution_is_deterministic_lists_stay_inverse_and_counts_exact() -> None:
    world = World(seed=7, users=1000)
    a, b = Evolution(world).at(3), Evolution(World(seed=7, users=1000)).at(3)
    ids = [world.id_of(i) for i in range(world.users)]
    followers = {u: set(a.followers(u)) for u in ids}
    lost = 0
    for v in ids:
        following = a.following(v)
        assert following == b.following(v) and a.timeline(v) == b.timeline(v)
        assert all(v in followers[u] for u in following)
        assert (a.counts(v).friends, a.counts(v).statuses) == (len(following), len(a.timeline(v)))
        assert a.user(v).followers_count == len(followers[v]) == len(a.followers(v))
        lost += len(set(world.following(v)) - set(following))
    assert lost > 0 and sum(map(len, followers.values())) == sum(len(a.following(v)) for v in ids)
    # the BFS ground truth of network crawls walks this generation's lists
    assert a.reachable([12], 2) == [12, *a.following(12)]
    assert a.reachable([12], 2, "followers") == [12, *a.followers(12)] != world.reachable([12], 2, "followers")


def test_a_frozen_world_does_not_change(sandbox_factory: Any) -> None:
    box = sandbox_factory(*SMALL, "--evolve-every", "0")
    before = truth(box, 12)
    assert box.post("/_sandbox/clock", {"advance": 30 * DAY})["generation"] == 0
    assert truth(box, 12) == before


def test_search_covers_new_tweets_and_recent_follows_now(sandbox_factory: Any) -> None:
    box = sandbox_factory(*SMALL)
    query = "narwhal OR quokka"
    q = quote(query)
    recent_before = box.get(f"/_sandbox/truth/search?query={q}&archive=0")["ids"]
    box.post("/_sandbox/clock", {"advance": 2 * DAY})
    recent = box.get(f"/_sandbox/truth/search?query={q}&archive=0")["ids"]
    archive = box.get(f"/_sandbox/truth/search?query={q}&archive=1")["ids"]
    fresh = [t for t in recent if t > max(recent_before)]
    assert fresh and set(recent_before) - set(recent)  # new tweets came in, tweets older than 7 days left
    assert set(recent) <= set(archive) and archive[: len(fresh)] == fresh
    pages = walk_v2(box, "/2/tweets/search/recent", {"query": query, "max_results": 10}, user_auth(), 10, "next_token")
    assert v2_ids(pages) == recent
    pages = walk_v2(box, "/2/tweets/search/all", {"query": query, "max_results": 10}, app_auth(), 10, "next_token")
    assert v2_ids(pages) == archive
    v1 = body(call(box, "/1.1/search/tweets.json", {"q": query, "count": 100}))
    assert [t["id"] for t in v1["statuses"]] == recent
