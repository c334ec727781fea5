"""The sandbox's Bluesky face (/xrpc/ on the same port), checked with the real ``atproto`` SDK
(its Client unchanged but for the base URL) and raw HTTP, against the face's own ground truth."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
import requests
from atproto import Client
from atproto_client.request import Request
from atproto_client import exceptions as sdk_errors

from conftest import SMALL_WORLD
from tweetform.credentials import load_credentials
from tweetform.sandbox.bluesky import ids
from tweetform.sandbox.credentials import DEMO_BLUESKY_ACCOUNTS, demo_credentials_as_settings

DEMO = DEMO_BLUESKY_ACCOUNTS[0]


def sdk_client(base: str) -> Client:
    """The SDK's own Client at the sandbox's base URL. Only its HTTP time-out differs from the default
    (httpx's 5 s): four test processes on two cores can keep a first answer (an index build) longer."""
    return Client(base_url=base, request=Request(timeout=60))


@pytest.fixture
def client(sandbox: Any) -> Iterator[Client]:
    # the world's engagement index is built on the first post rendered: build it here, not under
    # the SDK's 5-second timeout (a machine running four test processes took longer)
    sandbox.get(f"/_sandbox/truth/bsky/engaged/{demo_did(sandbox)}")
    c = sdk_client(sandbox.base)
    yield c
    c.request.close()


def xrpc(box: Any, nsid: str, params: Any = None, token: str | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{box.base}/xrpc/{nsid}", params=params, headers=headers, timeout=120)  # a loaded machine


def login(box: Any, account: Any = DEMO) -> dict[str, Any]:
    resp = requests.post(f"{box.base}/xrpc/com.atproto.server.createSession",
                         json={"identifier": account.handle, "password": account.app_password}, timeout=120)
    assert resp.status_code == 200, resp.text
    return resp.json()


def all_pages(fetch: Any, key: str) -> tuple[list[Any], list[int]]:
    """Every item of a list, following cursors until there is none; and the page sizes."""
    items, sizes, cursor, seen = [], [], None, set()
    while True:
        page = fetch(cursor)
        got = getattr(page, key) if not isinstance(page, dict) else page[key]
        items += got
        sizes.append(len(got))
        cursor = page.cursor if not isinstance(page, dict) else page.get("cursor")
        if not cursor:
            return items, sizes
        assert cursor not in seen
        seen.add(cursor)


def did_of(box: Any, uid: int) -> str:
    return box.get(f"/_sandbox/truth/bsky/did?ids={uid}")["dids"][str(uid)]


def demo_did(box: Any) -> str:
    return next(a["did"] for a in box.get("/_sandbox/truth/bsky/accounts") if a["handle"] == DEMO.handle)


# --- identities --------------------------------------------------------------------------


def test_ids_round_trip_and_reject_what_was_never_issued() -> None:
    for uid in (12, 1_000_000_123, (123456789 << 22) | 77):
        did = ids.did_of(uid)
        assert ids.is_did(did) and len(did) == len("did:plc:") + 24
        assert ids.uid_of_did(did) == uid
    assert ids.uid_of_did("did:plc:" + "a" * 24) is None
    tid = (987654321 << 22) | 4242
    rkey = ids.tweet_rkey(tid)
    assert len(rkey) == 13 and ids.tweet_id_of(rkey, 4242) == tid
    assert ids.tweet_id_of(rkey, 4243) is None
    assert ids.is_handle("demo-1.sandbox.test") and not ids.is_handle("no_underscores.test")


# --- the SDK ---------------------------------------------------------------------------


def test_sdk_login_profile_follows_and_followers_equal_truth(sandbox: Any, client: Client) -> None:
    me = client.login(DEMO.handle, DEMO.app_password)
    did = demo_did(sandbox)
    assert me.did == did and me.handle == DEMO.handle
    profile = client.get_profile(DEMO.handle)
    assert profile.did == did and profile.follows_count >= 5 and profile.posts_count >= 5
    for direction, call in (("follows", client.get_follows), ("followers", client.get_followers)):
        got, _ = all_pages(lambda c: call(did, cursor=c, limit=3), direction)
        assert [p.did for p in got] == sandbox.get(f"/_sandbox/truth/bsky/{direction}/{did}")["dids"]
        assert all(p.handle.endswith(".sandbox.test") for p in got)


def test_sdk_author_feed_posts_threads_and_profiles(sandbox: Any, client: Client) -> None:
    did = demo_did(sandbox)
    feed, _ = all_pages(lambda c: client.get_author_feed(did, cursor=c, limit=40), "feed")
    truth = sandbox.get(f"/_sandbox/truth/bsky/feed/{did}")["items"]
    got = [{"uri": item.post.uri, "repost": item.reason.uri if item.reason else None} for item in feed]
    assert got == truth and len(got) >= 5
    own = [item.post for item in feed if item.reason is None]
    assert all(p.author.did == did and p.record.text for p in own)
    uris = [p.uri for p in own[:25]]
    assert [p.uri for p in client.get_posts(uris).posts] == uris
    thread = client.get_post_thread(uris[0]).thread
    assert thread.py_type == "app.bsky.feed.defs#threadViewPost" and thread.post.uri == uris[0]
    replies = [item for item in feed if item.reply is not None]
    if replies:  # a reply's thread climbs to its parent
        t = client.get_post_thread(replies[0].post.uri, parent_height=1).thread
        assert t.parent.post.uri == replies[0].post.record.reply.parent.uri
    others = sandbox.get(f"/_sandbox/truth/bsky/follows/{did}")["dids"][:30]
    profiles = client.get_profiles([did, *others[:24]]).profiles
    assert [p.did for p in profiles] == [did, *others[:24]]
    assert client.resolve_handle(DEMO.handle).did == did


def test_sdk_search_needs_a_session_and_refreshes_it(sandbox_factory: Any) -> None:
    # access tokens of 10 minutes: the SDK refreshes 15 minutes before expiry, so before every call
    box = sandbox_factory(*SMALL_WORLD, "--bluesky", "access_ttl=600")
    truth = box.get("/_sandbox/truth/bsky/search?q=vote")["uris"]  # builds the search index (the SDK waits 5 s at most)
    c = sdk_client(box.base)
    try:
        with pytest.raises(sdk_errors.UnauthorizedError) as anonymous:
            c.app.bsky.feed.search_posts({"q": "the"})
        assert anonymous.value.response.content.error == "AuthMissing"
        c.login(DEMO.handle, DEMO.app_password)
        got, sizes = all_pages(lambda cur: c.app.bsky.feed.search_posts({"q": "vote", "cursor": cur}), "posts")
        assert [p.uri for p in got] == truth and len(truth) > 25
        counters = box.get("/_sandbox/bsky/counters")
        assert counters["sessions_created"] == 1 and counters["sessions_refreshed"] >= len(sizes)
    finally:
        c.request.close()


def test_sdk_rate_limit_error_carries_the_headers(sandbox_factory: Any) -> None:
    box = sandbox_factory(*SMALL_WORLD, "--bluesky", "rate=3", "--bluesky", "window=60")
    c = sdk_client(box.base)
    try:
        for _ in range(3):
            c.resolve_handle(DEMO.handle)
        with pytest.raises(sdk_errors.RateLimitExceededError) as limited:
            c.resolve_handle(DEMO.handle)
        assert limited.value.limit == 3 and limited.value.remaining == 0 and limited.value.policy == "3;w=60"
        assert limited.value.response.content.error == "RateLimitExceeded" and 0 < limited.value.retry_after <= 61  # the reset is a whole epoch second
        lanes = box.get("/_sandbox/bsky/counters")["lanes"]
        assert [(x["served"], x["rate_limited"]) for x in lanes] == [(3, 1)]
    finally:
        c.request.close()


# --- raw HTTP: shapes, limits, errors ------------------------------------------------------


def test_every_answer_has_ratelimit_headers_and_errors_are_xrpc(sandbox: Any) -> None:
    resp = xrpc(sandbox, "app.bsky.actor.getProfile", {"actor": DEMO.handle})
    assert resp.status_code == 200
    assert resp.headers["ratelimit-policy"] == "3000;w=300"
    assert int(resp.headers["ratelimit-remaining"]) == int(resp.headers["ratelimit-limit"]) - 1
    cases = [
        ("app.bsky.graph.getFollows", {}, 400, "InvalidRequest", 'Params must have the property "actor"'),
        ("app.bsky.graph.getFollows", {"actor": DEMO.handle, "limit": "101"}, 400, "InvalidRequest",
         "limit can not be greater than 100"),
        ("app.bsky.actor.getProfiles", {"actors": [DEMO.handle] * 26}, 400, "InvalidRequest",
         "actors must not have more than 25 elements"),
        ("app.bsky.feed.getPosts", {"uris": ["not-a-uri"]}, 400, "InvalidRequest", "uris/0 must be a valid at-uri"),
        ("app.bsky.feed.getAuthorFeed", {"actor": DEMO.handle, "filter": "nope"}, 400, "InvalidRequest", None),
        ("app.bsky.graph.getFollows", {"actor": DEMO.handle, "cursor": "forged0"}, 400, "InvalidRequest", "Malformed cursor"),
        ("com.atproto.identity.resolveHandle", {"handle": "nobody.sandbox.test"}, 400, "InvalidRequest",
         "Unable to resolve handle"),
        ("app.bsky.feed.searchPosts", {"q": "vote"}, 401, "AuthMissing", "Authentication Required"),
        ("app.bsky.unknown.method", {}, 501, "MethodNotImplemented", None),
        ("app.bsky.feed.getPostThread", {"uri": f"at://{demo_did(sandbox)}/app.bsky.feed.post/3aaaaaaaaaaaa"}, 400,
         "NotFound", None),
    ]
    for nsid, params, status, name, message in cases:
        resp = xrpc(sandbox, nsid, params)
        body = resp.json()
        assert (resp.status_code, body["error"]) == (status, name), (nsid, params, body)
        assert message is None or body["message"] == message
        assert "ratelimit-remaining" in resp.headers


def test_account_states_map_to_the_appview_errors(sandbox: Any) -> None:
    ex = sandbox.get("/_sandbox/examples")
    states = {"protected": ("AccountDeactivated", "deactivated"), "suspended": ("AccountTakedown", "takendown"),
              "deleted": ("InvalidRequest", None)}
    for kind, (error, status) in states.items():
        did = did_of(sandbox, ex[kind][0])
        body = xrpc(sandbox, "app.bsky.actor.getProfile", {"actor": did}).json()
        assert body["error"] == error
        follows = xrpc(sandbox, "app.bsky.graph.getFollows", {"actor": did}).json()
        assert follows == {"error": "InvalidRequest", "message": f"Actor not found: {did}"}
        assert sandbox.get(f"/_sandbox/truth/bsky/profile/{did}").get("status") == status
        # look-ups drop accounts that are not active, silently
        assert xrpc(sandbox, "app.bsky.actor.getProfiles", {"actors": [did]}).json() == {"profiles": []}


def test_lists_are_cut_then_cleared_so_pages_run_short_before_the_end(sandbox: Any) -> None:
    uid = sandbox.get("/_sandbox/examples")["many_followers"][0]
    did = did_of(sandbox, uid)
    got, sizes = all_pages(lambda c: xrpc(sandbox, "app.bsky.graph.getFollowers",
                                          {"actor": did, "limit": 100, **({"cursor": c} if c else {})}).json(), "followers")
    assert [p["did"] for p in got] == sandbox.get(f"/_sandbox/truth/bsky/followers/{did}")["dids"]
    assert len(sizes) > 2 and any(s < 100 for s in sizes[:-1])  # a short page is not the end
    # no deactivated, taken-down or deleted account is ever listed
    raw = sandbox.get(f"/_sandbox/truth/followers/{uid}")["ids"]
    assert len(got) < len(raw)


def test_sessions_expire_on_the_logical_clock_and_refresh_tokens_rotate(sandbox: Any) -> None:
    sandbox.get("/_sandbox/truth/bsky/search?q=vote")  # the search index, built once
    session = login(sandbox)
    assert set(session) >= {"accessJwt", "refreshJwt", "handle", "did"} and "didDoc" not in session
    ok = xrpc(sandbox, "app.bsky.feed.searchPosts", {"q": "vote", "limit": 1}, session["accessJwt"])
    assert ok.status_code == 200 and len(ok.json()["posts"]) == 1
    refresh = lambda token: requests.post(f"{sandbox.base}/xrpc/com.atproto.server.refreshSession",  # noqa: E731
                                          headers={"Authorization": f"Bearer {token}"}, timeout=120)
    renewed = refresh(session["refreshJwt"])
    assert renewed.status_code == 200 and renewed.json()["did"] == session["did"]
    assert refresh(session["refreshJwt"]).json()["error"] == "ExpiredToken"  # used once: rotated
    assert refresh(session["accessJwt"]).json() == {"error": "InvalidToken", "message": "Invalid token type"}
    sandbox.post("/_sandbox/clock", {"advance": 7201})
    expired = xrpc(sandbox, "app.bsky.feed.searchPosts", {"q": "vote"}, renewed.json()["accessJwt"])
    assert (expired.status_code, expired.json()) == (400, {"error": "ExpiredToken", "message": "Token has expired"})
    again = refresh(renewed.json()["refreshJwt"])  # the refresh token lives 90 days
    assert xrpc(sandbox, "app.bsky.feed.searchPosts", {"q": "vote", "limit": 1}, again.json()["accessJwt"]).status_code == 200
    forged = session["accessJwt"][:-4] + "AAAA"
    assert xrpc(sandbox, "app.bsky.feed.searchPosts", {"q": "vote"}, forged).json()["error"] == "InvalidToken"


def test_create_session_has_its_own_limits_and_refuses_wrong_passwords(sandbox_factory: Any) -> None:
    box = sandbox_factory(*SMALL_WORLD, "--bluesky", "session_limits=2,3")
    url = f"{box.base}/xrpc/com.atproto.server.createSession"
    wrong = requests.post(url, json={"identifier": DEMO.handle, "password": "aaaa-bbbb-cccc-dddd"}, timeout=120)
    assert (wrong.status_code, wrong.json()["error"]) == (401, "AuthenticationRequired")
    assert DEMO.app_password not in wrong.text
    ok = requests.post(url, json={"identifier": DEMO.handle, "password": DEMO.app_password}, timeout=120)
    assert ok.status_code == 200 and ok.headers["ratelimit-policy"] == "2;w=300"
    limited = requests.post(url, json={"identifier": DEMO.handle, "password": DEMO.app_password}, timeout=120)
    assert (limited.status_code, limited.json()["error"]) == (429, "RateLimitExceeded")
    assert limited.headers["ratelimit-remaining"] == "0"
    other = DEMO_BLUESKY_ACCOUNTS[1]  # per account
    assert requests.post(url, json={"identifier": other.handle, "password": other.app_password}, timeout=120).status_code == 200


def test_faults_and_the_evolving_world_reach_the_face(sandbox: Any) -> None:
    did = demo_did(sandbox)
    sandbox.post("/_sandbox/faults", {"error": 1.0})
    failed = xrpc(sandbox, "app.bsky.actor.getProfile", {"actor": did})
    assert failed.status_code in (500, 503) and set(failed.json()) == {"error", "message"}
    sandbox.post("/_sandbox/faults", {"error": 0.0})
    uid = sandbox.get("/_sandbox/examples")["many_followers"][0]
    big = did_of(sandbox, uid)
    before = sandbox.get(f"/_sandbox/truth/bsky/followers/{big}")["dids"]
    sandbox.post("/_sandbox/clock", {"advance": 3 * 86400})  # three generations later
    after = sandbox.get(f"/_sandbox/truth/bsky/followers/{big}")["dids"]
    assert after != before
    got, _ = all_pages(lambda c: xrpc(sandbox, "app.bsky.graph.getFollowers",
                                      {"actor": big, "limit": 100, **({"cursor": c} if c else {})}).json(), "followers")
    assert [p["did"] for p in got] == after


def test_reachable_truth_is_a_bfs_of_the_listed_truth(sandbox: Any) -> None:
    did = demo_did(sandbox)
    order = sandbox.get(f"/_sandbox/truth/bsky/reachable?seeds={did}&depth=2&direction=follows")["dids"]
    assert order == [did, *sandbox.get(f"/_sandbox/truth/bsky/follows/{did}")["dids"]]


def test_demo_credentials_carry_bluesky_accounts_the_crawler_keeps_apart() -> None:
    settings = {"TWEETFORM_CREDENTIALS": demo_credentials_as_settings()}
    x_side = load_credentials(settings)
    bsky = load_credentials(settings, "bluesky")
    assert [c.alias for c in bsky] == [a.alias for a in DEMO_BLUESKY_ACCOUNTS]
    assert all(c.kind != "bluesky" for c in x_side) and len(x_side) == 10
    assert all(c.app_password not in repr(c) and c.app_password in c.secrets() for c in bsky)


def test_sdk_quotes_reposts_likes_and_replies_equal_truth(sandbox: Any, client: Client) -> None:
    ex = sandbox.get("/_sandbox/examples")
    uris = []
    for uid in ex["many_followers"]:
        uris += sandbox.get(f"/_sandbox/truth/bsky/engaged/{did_of(sandbox, uid)}")["uris"]
    assert uris, "the small world has engaged posts"
    uri = uris[0]
    quotes, _ = all_pages(lambda c: client.app.bsky.feed.get_quotes({"uri": uri, "cursor": c, "limit": 2}), "posts")
    assert [p.uri for p in quotes] == sandbox.get(f"/_sandbox/truth/bsky/quotes?uri={uri}")["uris"] != []
    assert all(p.record.embed.record.uri == uri for p in quotes)
    reposts, _ = all_pages(lambda c: client.get_reposted_by(uri, cursor=c, limit=2), "reposted_by")
    assert [p.did for p in reposts] == sandbox.get(f"/_sandbox/truth/bsky/reposts?uri={uri}")["dids"] != []
    likes, _ = all_pages(lambda c: client.get_likes(uri, cursor=c, limit=2), "likes")
    assert [x.actor.did for x in likes] == sandbox.get(f"/_sandbox/truth/bsky/likes?uri={uri}")["dids"] != []
    thread = client.get_post_thread(uri, depth=1).thread
    assert [r.post.uri for r in thread.replies] == sandbox.get(f"/_sandbox/truth/bsky/replies?uri={uri}")["uris"] != []
    post = client.get_posts([uri]).posts[0]
    assert post.like_count >= len(likes) and post.quote_count >= len(quotes)
