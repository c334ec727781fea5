"""The sandbox serves the collection endpoints of issue 17 (quotes, retweeters, likes,
mentions, lists, counts, conversations), checked as an API client would: plain
``requests`` (OAuth 1.0a by ``requests_oauthlib``, bearer tokens) and tweepy's real
``Client``, each answer compared with ``/_sandbox/truth/…``.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from tweetform.api import limits, pricing
from tweetform.api.endpoints import ENDPOINTS
from test_sandbox_api import CREDS, SMALL, app_auth, body, user_auth

COLLECTIONS = [
    "/2/tweets/:id/quote_tweets", "/2/tweets/:id/retweeted_by", "/2/tweets/:id/liking_users",
    "/2/users/:id/liked_tweets", "/2/users/:id/mentions", "/2/lists/:id", "/2/lists/:id/members",
    "/2/lists/:id/followers", "/2/lists/:id/tweets", "/2/users/:id/list_memberships",
    "/2/users/:id/owned_lists", "/2/users/:id/followed_lists", "/2/tweets/counts/recent", "/2/tweets/counts/all",
]


def test_every_collection_endpoint_has_a_row_in_each_table() -> None:
    """One endpoint table, one limits table, one price table: each new endpoint is a row of all three,
    and who may call it (user context only, app-only) agrees between the endpoint and limits tables."""
    for key in COLLECTIONS:
        endpoint = ENDPOINTS[key]
        assert key in limits.LIMITS, key
        assert (key in pricing.DATA_KIND) != (key in pricing.REQUEST_KIND), key
        user, app = limits.limits_of(key)
        assert (app is None) == endpoint.user_only and (user is None) == endpoint.app_only, key
        assert endpoint.paging == ("none" if key == "/2/lists/:id" else "token"), key
    assert pricing.price(pricing.LIST) == 0.005 and pricing.price(pricing.LIKE) == 0.001
    assert pricing.price(pricing.REQUEST_KIND["/2/tweets/counts/recent"]) == 0.005
    assert pricing.price(pricing.REQUEST_KIND["/2/tweets/counts/all"]) == 0.010


# --- against a real sandbox ---------------------------------------------------------------------

P = "https://api.twitter.com/2/problems/"
API = "https://api.twitter.com"


def get(box: Any, path: str, params: Any = None, auth: Any = None, expect: int = 200) -> dict[str, Any]:
    for _ in range(8):  # a polite client: on 429 wait for the window's reset (1 s windows here)
        r = requests.get(box.url(path), params=params, auth=auth if auth is not None else app_auth(), timeout=30)
        if r.status_code != 429 or expect == 429:
            break
        time.sleep(max(0.05, int(r.headers["x-rate-limit-reset"]) - time.time() + 0.05))
    assert r.status_code == expect, (path, params, r.status_code, r.text[:300])
    # quota headers on every answer (their reset is checked in test_sandbox_api: here a first answer
    # may build a search index for seconds, longer than these 1 s windows)
    assert 0 <= int(r.headers["x-rate-limit-remaining"]) <= int(r.headers["x-rate-limit-limit"])
    return body(r)


def walk(box: Any, path: str, params: dict[str, Any], auth: Any = None, token: str = "pagination_token") -> list[dict]:
    """Every page to the end marker (only a missing next_token ends it); each page's shape checked."""
    pages, params = [], dict(params)
    while True:
        page = get(box, path, params, auth)
        meta = page["meta"]
        assert meta["result_count"] == len(page.get("data", ())), page
        assert "data" in page or meta["result_count"] == 0  # an empty page has no data, not []
        pages.append(page)
        if "next_token" not in meta:
            return pages
        params[token] = meta["next_token"]


def ids_of(pages: list[dict]) -> list[int]:
    out = [int(o["id"]) for p in pages for o in p.get("data", ())]
    assert len(out) == len(set(out)), "an id came twice"
    return out


@pytest.fixture
def box(sandbox_factory: Any) -> Any:
    box = sandbox_factory(*SMALL)
    box.post("/_sandbox/billing/reset")
    return box


def engaged(box: Any, uid: int = 12) -> list[int]:
    tids = box.truth("engaged", uid)
    assert tids, f"user {uid} has no tweet with replies, quotes, retweets and likes"
    return tids


def test_seed_user_tweets_have_replies_quotes_retweets_and_likes(box: Any) -> None:
    """User 12 (the demo's seed) has tweets of the last 7 days engaged every way, and likes and is mentioned."""
    for tid in engaged(box)[:3]:
        for what in ("quotes", "retweeters", "likers", "replies"):
            assert box.truth(what, tid), (what, tid)
    assert box.truth("liked", 12) and box.truth("mentions", 12)


def test_quote_tweets_page_to_the_truth(box: Any) -> None:
    for tid in engaged(box)[:3]:
        pages = walk(box, f"/2/tweets/{tid}/quote_tweets", {"max_results": 10, "tweet.fields": "referenced_tweets,author_id"})
        assert ids_of(pages) == box.truth("quotes", tid)
        for page in pages:
            assert set(page["meta"]) <= {"result_count", "next_token"}
            for t in page.get("data", ()):
                assert {"type": "quoted", "id": str(tid)} in t["referenced_tweets"]
    # default page: 10; the minimum is 10 and the maximum 100
    tid = max(engaged(box), key=lambda t: len(box.truth("quotes", t)))
    assert len(box.truth("quotes", tid)) > 10
    assert get(box, f"/2/tweets/{tid}/quote_tweets")["meta"]["result_count"] <= 10
    for bad in (9, 101):
        err = get(box, f"/2/tweets/{tid}/quote_tweets", {"max_results": bad}, expect=400)
        assert err["type"] == P + "invalid-request" and "max_results" in err["errors"][0]["parameters"]


def test_quote_tweets_includes(box: Any) -> None:
    tid = engaged(box)[0]
    page = get(box, f"/2/tweets/{tid}/quote_tweets", {"max_results": 10, "expansions": "author_id,referenced_tweets.id",
                                                      "tweet.fields": "author_id"})
    authors = {t["author_id"] for t in page["data"]}
    assert authors and authors == {u["id"] for u in page["includes"]["users"]}
    assert {t["id"] for t in page["includes"]["tweets"]} == {str(tid)}  # what they all quote


def test_retweeted_by_and_liking_users_page_to_the_truth(box: Any) -> None:
    for tid in engaged(box)[:3]:
        rts = walk(box, f"/2/tweets/{tid}/retweeted_by", {"max_results": 1})
        assert ids_of(rts) == box.truth("retweeters", tid)
        assert all(set(p["data"][0]) == {"id", "name", "username"} for p in rts if "data" in p)
        likes = walk(box, f"/2/tweets/{tid}/liking_users", {"max_results": 7, "user.fields": "created_at"}, user_auth())
        assert ids_of(likes) == box.truth("likers", tid)
        assert all("created_at" in u for p in likes for u in p.get("data", ()))
        # past the first page the API sends previous_token too
        if len(rts) > 1:
            assert "previous_token" in rts[1]["meta"]


def test_liked_tweets_and_mentions_page_to_the_truth(box: Any) -> None:
    liked = walk(box, "/2/users/12/liked_tweets", {"max_results": 5}, user_auth())
    assert ids_of(liked) == box.truth("liked", 12)
    mentions = walk(box, "/2/users/12/mentions", {"max_results": 100, "tweet.fields": "entities"})
    found = ids_of(mentions)
    assert found == box.truth("mentions", 12)[:800] and found
    jack = get(box, "/2/users", {"ids": "12"})["data"][0]["username"]
    for p in mentions:
        assert p["meta"]["newest_id"] == p["data"][0]["id"] and p["meta"]["oldest_id"] == p["data"][-1]["id"]
        for t in p["data"]:
            assert jack in [m["username"] for m in t["entities"]["mentions"]]
    # since_id narrows to what is newer
    since = found[len(found) // 2]
    assert ids_of(walk(box, "/2/users/12/mentions", {"max_results": 100, "since_id": since})) == [i for i in found if i > since]
    for bad in (4, 101):
        get(box, "/2/users/12/mentions", {"max_results": bad}, expect=400)
        get(box, "/2/users/12/liked_tweets", {"max_results": bad}, user_auth(), expect=400)


def test_public_metrics_are_what_the_endpoints_return(box: Any) -> None:
    """quote_count, retweet_count, like_count and reply_count count the endpoints' lists, in v2 and v1.1."""
    tids = engaged(box)[:3] + list(box.truth("timeline", 12)[:40])
    truth = {tid: (len(box.truth("retweeters", tid)), len(box.truth("likers", tid)),
                   len(box.truth("replies", tid)), len(box.truth("quotes", tid))) for tid in tids}
    assert any(t != (0, 0, 0, 0) for t in truth.values()) and any(t == (0, 0, 0, 0) for t in truth.values())
    for chunk in (tids[:40], tids[40:]):
        page = get(box, "/2/tweets", {"ids": ",".join(map(str, chunk)), "tweet.fields": "public_metrics,referenced_tweets"})
        retweets = 0
        for t in page["data"]:
            m = t["public_metrics"]
            original = [r["id"] for r in t.get("referenced_tweets", ()) if r["type"] == "retweeted"]
            if original:  # a retweet shows its original's retweet_count, as the API does
                retweets += 1
                assert (m["retweet_count"], m["like_count"], m["reply_count"], m["quote_count"]) == (
                    len(box.truth("retweeters", int(original[0]))), 0, 0, 0)
                continue
            assert (m["retweet_count"], m["like_count"], m["reply_count"], m["quote_count"]) == truth[int(t["id"])]
        v1 = get(box, "/1.1/statuses/lookup.json", {"id": ",".join(map(str, chunk))}, user_auth())
        for t in v1:
            if "retweeted_status" not in t:
                assert (t["retweet_count"], t["favorite_count"]) == truth[t["id"]][:2]
    # and the counts are the endpoints' own
    tid = engaged(box)[0]
    assert len(ids_of(walk(box, f"/2/tweets/{tid}/quote_tweets", {"max_results": 100}))) == truth[tid][3]
    assert len(ids_of(walk(box, f"/2/tweets/{tid}/retweeted_by", {}))) == truth[tid][0]
    assert len(ids_of(walk(box, f"/2/tweets/{tid}/liking_users", {}, user_auth()))) == truth[tid][1]


def test_users_like_count_and_listed_count_are_what_the_endpoints_return(box: Any) -> None:
    """A user's like_count (v1.1 favourites_count) counts its liked_tweets, listed_count its
    list_memberships, in v2 and v1.1 (as the plans of liked_tweets and relation=memberships read them)."""
    uids = [12, *box.get("/_sandbox/examples")["ordinary"][:5]]
    truth = {uid: (len(box.truth("liked", uid)), len(box.truth("memberships", uid))) for uid in uids}
    assert any(t[0] and t[1] for t in truth.values()) and any(t != truth[12] for t in truth.values())
    v2 = get(box, "/2/users", {"ids": ",".join(map(str, uids)), "user.fields": "public_metrics"})["data"]
    assert {int(u["id"]): (u["public_metrics"]["like_count"], u["public_metrics"]["listed_count"]) for u in v2} == truth
    v1 = get(box, "/1.1/users/lookup.json", {"user_id": ",".join(map(str, uids))}, user_auth())
    assert {u["id"]: (u["favourites_count"], u["listed_count"]) for u in v1} == truth
    # and the counts are the endpoints' own
    assert len(ids_of(walk(box, "/2/users/12/liked_tweets", {"max_results": 100}, user_auth()))) == truth[12][0]
    assert len(ids_of(walk(box, "/2/users/12/list_memberships", {"max_results": 100}))) == truth[12][1]


def test_tweet_endpoints_errors(box: Any) -> None:
    tid = engaged(box)[0]
    unknown = tid + 1  # ids encode their author and time: this one never existed
    assert not box.get(f"/_sandbox/truth/tweet/{unknown}")["exists"]
    protected = box.get("/_sandbox/examples")["protected"][0]
    hidden = box.truth("timeline", protected)[0]
    for path, auth in (("quote_tweets", app_auth()), ("retweeted_by", app_auth()), ("liking_users", user_auth())):
        missing = get(box, f"/2/tweets/{unknown}/{path}", None, auth)
        assert "data" not in missing and missing["errors"][0]["title"] == "Not Found Error"
        assert missing["errors"][0]["type"] == P + "resource-not-found" and missing["errors"][0]["resource_id"] == str(unknown)
        denied = get(box, f"/2/tweets/{hidden}/{path}", None, auth)
        assert denied["errors"][0]["title"] == "Authorization Error"
        assert denied["errors"][0]["type"] == P + "not-authorized-for-resource"
        assert get(box, f"/2/tweets/abc/{path}", None, auth, expect=400)["type"] == P + "invalid-request"
    # a bearer (app-only) token on a user-context endpoint: 403, no quota spent, nothing billed
    for path in (f"/2/tweets/{tid}/liking_users", "/2/users/12/liked_tweets"):
        r = requests.get(box.url(path), auth=app_auth(), timeout=30)
        assert r.status_code == 403 and body(r)["type"] == P + "unsupported-authentication"
        assert "Application-Only is forbidden" in body(r)["detail"]
    assert get(box, f"/2/users/{protected}/mentions")["errors"][0]["title"] == "Authorization Error"
    assert box.get("/_sandbox/billing")["total_usd"] == 0  # errors are never billed


def test_collections_are_billed_at_their_kind(box: Any) -> None:
    tid = engaged(box)[0]
    likers = ids_of([get(box, f"/2/tweets/{tid}/liking_users", None, user_auth())])
    quotes = ids_of([get(box, f"/2/tweets/{tid}/quote_tweets", {"max_results": 100})])
    retweeters = ids_of([get(box, f"/2/tweets/{tid}/retweeted_by")])
    bill = box.get("/_sandbox/billing")["apps"]
    assert len(bill) == 1  # demo-app-1's bearer belongs to demo-user-1's app
    app = next(iter(bill.values()))
    assert app["resources"] == {"like": len(likers), "post": len(quotes), "user": len(retweeters)}
    assert app["usd"] == round(len(likers) * 0.001 + len(quotes) * 0.005 + len(retweeters) * 0.010, 6)


# --- tweepy's real Client, unchanged but for the host ----------------------------------------------


def tweepy_client(box: Any) -> Any:
    import tweepy  # installed by `make test` (pip install --no-deps tweepy==4.17.0, see Makefile)
    from requests.adapters import HTTPAdapter

    base = box.base

    class ToSandbox(HTTPAdapter):
        def send(self, request: Any, **kwargs: Any) -> Any:
            request.url = base + request.url[len(API):]
            return super().send(request, **kwargs)

    client = tweepy.Client(bearer_token=CREDS["demo-app-1"]["bearer_token"], wait_on_rate_limit=True)
    client.session.mount(API, ToSandbox())
    return client


def paginate(method: Any, *args: Any, **kwargs: Any) -> list[int]:
    import tweepy

    out = [int(o.id) for resp in tweepy.Paginator(method, *args, **kwargs) for o in resp.data or ()]
    assert len(out) == len(set(out))
    return out


def test_tweepy_reads_quotes_retweeters_and_mentions(box: Any) -> None:
    import tweepy

    assert tweepy.__version__ == "4.17.0"
    client = tweepy_client(box)
    tid = engaged(box)[0]
    assert paginate(client.get_quote_tweets, tid, max_results=10) == box.truth("quotes", tid)
    assert paginate(client.get_retweeters, tid, max_results=3) == box.truth("retweeters", tid)
    assert paginate(client.get_users_mentions, 12, max_results=100) == box.truth("mentions", 12)[:800]
    quotes = client.get_quote_tweets(tid, max_results=10, expansions="author_id", tweet_fields="public_metrics")
    assert isinstance(quotes.data[0], tweepy.Tweet) and quotes.includes["users"]
    assert isinstance(quotes.includes["users"][0], tweepy.User)


# --- lists ------------------------------------------------------------------------------------------


def test_seed_user_owns_follows_and_is_a_member_of_lists(box: Any) -> None:
    for what in ("owned_lists", "memberships", "followed_lists"):
        assert box.truth(what, 12), what


def test_list_lookup_shapes_and_errors(box: Any) -> None:
    lid = box.truth("owned_lists", 12)[0]
    plain = get(box, f"/2/lists/{lid}")
    assert set(plain) == {"data"} and set(plain["data"]) == {"id", "name"} and plain["data"]["id"] == str(lid)
    full = get(box, f"/2/lists/{lid}", {"list.fields": "created_at,description,follower_count,member_count,owner_id,private",
                                         "expansions": "owner_id", "user.fields": "username"})
    data = full["data"]
    assert data["owner_id"] == "12" and data["private"] is False
    assert data["member_count"] == len(box.truth("list_members", lid)) and data["follower_count"] == len(box.truth("list_followers", lid))
    assert [u["id"] for u in full["includes"]["users"]] == ["12"]
    nothing = min(box.truth("owned_lists", 12)) - 1  # k = 7 of the user before: nobody owns 8 lists
    missing = get(box, f"/2/lists/{nothing}")
    assert "data" not in missing and missing["errors"][0]["title"] == "Not Found Error"
    assert missing["errors"][0]["resource_type"] == "list" and missing["errors"][0]["type"] == P + "resource-not-found"
    assert get(box, "/2/lists/x1", expect=400)["type"] == P + "invalid-request"
    assert get(box, f"/2/lists/{lid}", {"list.fields": "bogus"}, expect=400)["type"] == P + "invalid-request"


def test_list_members_followers_and_tweets_page_to_the_truth(box: Any) -> None:
    for lid in box.truth("owned_lists", 12):
        members = walk(box, f"/2/lists/{lid}/members", {"max_results": 4})
        assert ids_of(members) == box.truth("list_members", lid)
        for page in members[:-1]:
            assert page["meta"]["next_token"].isdigit()  # numeric tokens, as the API's
        assert ids_of(walk(box, f"/2/lists/{lid}/followers", {"max_results": 3})) == box.truth("list_followers", lid)
        tweets = walk(box, f"/2/lists/{lid}/tweets", {"max_results": 100, "tweet.fields": "author_id"})
        assert ids_of(tweets) == box.truth("list_tweets", lid)
        members_set = {str(m) for m in box.truth("list_members", lid)}
        assert all(t["author_id"] in members_set for p in tweets for t in p.get("data", ()))
    lid = box.truth("owned_lists", 12)[0]
    for path in ("members", "followers", "tweets"):
        get(box, f"/2/lists/{lid}/{path}", {"max_results": 101}, expect=400)
        assert get(box, f"/2/lists/{min(box.truth('owned_lists', 12)) - 1}/{path}")["errors"][0]["resource_type"] == "list"


def test_user_lists_page_to_the_truth(box: Any) -> None:
    for path, what in (("list_memberships", "memberships"), ("owned_lists", "owned_lists"), ("followed_lists", "followed_lists")):
        pages = walk(box, f"/2/users/12/{path}", {"max_results": 7, "list.fields": "owner_id", "expansions": "owner_id"})
        assert ids_of(pages) == box.truth(what, 12), path
        for page in pages:
            owners = {lst["owner_id"] for lst in page.get("data", ())}
            assert owners == {u["id"] for u in page.get("includes", {}).get("users", ())}
    assert all(str(i) for i in box.truth("memberships", 12))
    protected = box.get("/_sandbox/examples")["protected"][0]
    assert get(box, f"/2/users/{protected}/owned_lists")["errors"][0]["title"] == "Authorization Error"


def test_lists_are_billed_as_list_reads(box: Any) -> None:
    lid = box.truth("owned_lists", 12)[0]
    get(box, f"/2/lists/{lid}")
    owned = ids_of([get(box, "/2/users/12/owned_lists")])
    members = ids_of([get(box, f"/2/lists/{lid}/members")])
    app = next(iter(box.get("/_sandbox/billing")["apps"].values()))
    assert app["resources"] == {"list": len(owned), "user": len(members)}  # the looked-up list is one of the owned
    assert app["usd"] == round(len(owned) * 0.005 + len(members) * 0.010, 6)


def test_tweepy_reads_lists(box: Any) -> None:
    import tweepy

    client = tweepy_client(box)
    lid = box.truth("owned_lists", 12)[0]
    lst = client.get_list(lid, list_fields="owner_id,member_count")
    assert isinstance(lst.data, tweepy.List) and lst.data.owner_id == "12" and lst.data.member_count == len(box.truth("list_members", lid))
    assert paginate(client.get_list_members, lid, max_results=5) == box.truth("list_members", lid)
    assert paginate(client.get_list_followers, lid, max_results=5) == box.truth("list_followers", lid)
    assert paginate(client.get_list_tweets, lid, max_results=100) == box.truth("list_tweets", lid)
    assert paginate(client.get_list_memberships, 12, max_results=100) == box.truth("memberships", 12)
    assert paginate(client.get_owned_lists, 12, max_results=2) == box.truth("owned_lists", 12)
    assert paginate(client.get_followed_lists, 12, max_results=2) == box.truth("followed_lists", 12)


# --- counts and conversations -------------------------------------------------------------------


def counts_pages(box: Any, archive: bool, params: dict[str, Any]) -> list[dict]:
    path = "/2/tweets/counts/" + ("all" if archive else "recent")
    pages, params = [], dict(params)
    while True:
        page = get(box, path, params)
        data = page.get("data", ())
        assert page["meta"]["total_tweet_count"] == sum(b["tweet_count"] for b in data)
        assert "data" in page or page["meta"] == {"total_tweet_count": 0}  # nothing matched: no data
        pages.append(page)
        if "next_token" not in page["meta"]:
            return pages
        params["next_token"] = page["meta"]["next_token"]


def buckets_of(pages: list[dict]) -> list[dict]:
    """The pages' buckets in time order (pages come newest first, their buckets in time order)."""
    return [b for page in reversed(pages) for b in page.get("data", ())]


def iso_now(box: Any) -> str:
    return box.get("/_sandbox/clock")["world_now"]


def test_counts_recent_equal_search_and_truth(box: Any) -> None:
    query = "data"
    pages = counts_pages(box, False, {"query": query})
    assert len(pages) == 1  # 7 days fit one answer
    truth = box.get("/_sandbox/truth/counts?query=data&granularity=hour")
    assert buckets_of(pages) == truth["buckets"]
    found = ids_of(walk(box, "/2/tweets/search/recent", {"query": query, "max_results": 100}, token="next_token"))
    assert truth["total"] == pages[0]["meta"]["total_tweet_count"] == len(found) > 0
    buckets = truth["buckets"]
    # hourly, aligned, the first bucket starting 7 days before the world's now and the last ending at it
    assert 168 <= len(buckets) <= 169 and buckets[-1]["end"][:19] == iso_now(box)[:19]
    assert all(b["start"].endswith(":00:00.000Z") for b in buckets[1:])
    assert all(a["end"] == b["start"] for a, b in zip(buckets, buckets[1:]))
    # a window: counts and search agree over the same period too
    start, end = buckets[30]["start"], buckets[100]["start"]
    window = {"query": query, "start_time": start, "end_time": end}
    daily = counts_pages(box, False, {**window, "granularity": "day"})
    in_window = ids_of(walk(box, "/2/tweets/search/recent", {**window, "max_results": 100}, token="next_token"))
    assert sum(b["tweet_count"] for b in buckets_of(daily)) == len(in_window) == sum(b["tweet_count"] for b in buckets[30:100])
    since = found[len(found) // 3]  # since_id narrows counts as it narrows search
    assert sum(b["tweet_count"] for b in buckets_of(counts_pages(box, False, {"query": query, "since_id": since}))) == len(
        [i for i in found if i > since])
    minutes = counts_pages(box, False, {**window, "granularity": "minute"})
    assert sum(b["tweet_count"] for b in buckets_of(minutes)) == len(in_window) and len(buckets_of(minutes)) == 70 * 60


def test_counts_all_pages_back_31_days_at_a_time(box: Any) -> None:
    query = "from:12"
    default = counts_pages(box, True, {"query": query, "granularity": "day"})
    # 30 days from 00:00 UTC, and today so far (none at midnight): one page ending now
    assert len(default) == 1 and len(default[0]["data"]) == 30 + (not iso_now(box)[11:19] == "00:00:00")
    assert default[0]["data"][-1]["end"][:19] == iso_now(box)[:19]
    assert default[0]["data"][0]["start"].endswith("T00:00:00.000Z")
    params = {"query": query, "granularity": "day", "start_time": "2026-06-01T00:00:00Z"}
    pages = counts_pages(box, True, params)
    assert len(pages) == 5 and all(len(p.get("data", ())) <= 31 for p in pages)
    truth = box.get("/_sandbox/truth/counts?query=from:12&granularity=day&archive=true&start_time=2026-06-01T00:00:00Z")
    assert buckets_of(pages) == truth["buckets"]
    everything = ids_of(walk(box, "/2/tweets/search/all", {**params, "max_results": 500}, token="next_token"))
    assert truth["total"] == len(everything) > 0


def test_counts_errors_and_billing(box: Any) -> None:
    r = requests.get(box.url("/2/tweets/counts/recent"), params={"query": "data"}, auth=user_auth(), timeout=30)
    assert r.status_code == 403 and body(r)["type"] == P + "unsupported-authentication"  # app-only
    for params in ({}, {"query": "data", "granularity": "week"}, {"query": "data", "start_time": "2020-01-01T00:00:00Z"},
                   {"query": "data", "next_token": "abc", "pagination_token": "abc"}, {"query": "x" * 513},
                   {"query": "data", "next_token": "zzzzzzzz"}):
        assert get(box, "/2/tweets/counts/recent", params, expect=400)["type"] == P + "invalid-request", params
    nothing = get(box, "/2/tweets/counts/recent", {"query": "zzzqqq"})
    assert nothing == {"meta": {"total_tweet_count": 0}}
    assert box.get("/_sandbox/billing")["total_usd"] == 0  # neither errors nor an answer without data are billed
    for _ in range(2):  # per request, not per resource, and never deduplicated
        get(box, "/2/tweets/counts/recent", {"query": "data"})
    get(box, "/2/tweets/counts/all", {"query": "data"})
    app = next(iter(box.get("/_sandbox/billing")["apps"].values()))
    assert app["resources"] == {"counts_recent": 2, "counts_all": 1} and app["usd"] == 0.02


def test_conversation_search_finds_the_replies(box: Any) -> None:
    tid = engaged(box)[0]
    replies = walk(box, "/2/tweets/search/recent", {"query": f"conversation_id:{tid}", "max_results": 10,
                                                    "tweet.fields": "conversation_id,in_reply_to_user_id,referenced_tweets"},
                   token="next_token")
    found = ids_of(replies)
    assert found == box.truth("conversation", tid) and found
    assert all(t["conversation_id"] == str(tid) for p in replies for t in p["data"])
    direct = [t for p in replies for t in p["data"] if {"type": "replied_to", "id": str(tid)} in t["referenced_tweets"]]
    assert len(direct) == len(box.truth("replies", tid))  # reply_count: the direct replies
    assert box.get(f"/_sandbox/truth/conversation/{tid}?archive=true")["ids"] == ids_of(
        walk(box, "/2/tweets/search/all", {"query": f"conversation_id:{tid}", "max_results": 500}, token="next_token"))
    counted = counts_pages(box, False, {"query": f"conversation_id:{tid}"})
    assert sum(b["tweet_count"] for b in buckets_of(counted)) == len(found)
    assert get(box, "/2/tweets/search/recent", {"query": "conversation_id:abc"}, expect=400)["type"] == P + "invalid-request"


def test_tweepy_reads_counts_and_conversations(box: Any) -> None:
    client = tweepy_client(box)
    tid = engaged(box)[0]
    assert paginate(client.search_recent_tweets, f"conversation_id:{tid}", max_results=10) == box.truth("conversation", tid)
    recent = client.get_recent_tweets_count("data", granularity="day")
    truth = box.get("/_sandbox/truth/counts?query=data&granularity=day")
    assert recent.data == truth["buckets"] and recent.meta["total_tweet_count"] == truth["total"]
    import tweepy

    pages = list(tweepy.Paginator(client.get_all_tweets_count, "from:12", granularity="day", start_time="2026-06-01T00:00:00Z"))
    assert sum(p.meta["total_tweet_count"] for p in pages) == box.get(
        "/_sandbox/truth/counts?query=from:12&granularity=day&archive=true&start_time=2026-06-01T00:00:00Z")["total"]


# --- the evolving world ----------------------------------------------------------------------------


def test_evolving_world_adds_replies_quotes_retweets_and_likes(box: Any) -> None:
    """A day of logical time later the same tweets have more engagement, the endpoints list it and
    public_metrics still count exactly what they list; a second crawl differs from the first."""
    tids = engaged(box)[:3]
    before = {tid: {w: box.truth(w, tid) for w in ("quotes", "retweeters", "likers", "replies")} for tid in tids}
    liked_before = box.truth("liked", 12)
    box.post("/_sandbox/clock", {"advance": 2 * 86_400})
    assert box.get("/_sandbox/clock")["generation"] == 2
    grown = False
    for tid in tids:
        after = {w: box.truth(w, tid) for w in ("quotes", "retweeters", "likers", "replies")}
        for what, old in before[tid].items():
            assert set(old) <= set(after[what])  # nothing is taken back
            grown |= len(after[what]) > len(old)
        assert ids_of(walk(box, f"/2/tweets/{tid}/quote_tweets", {"max_results": 100})) == after["quotes"]
        assert ids_of(walk(box, f"/2/tweets/{tid}/retweeted_by", {})) == after["retweeters"]
        assert ids_of(walk(box, f"/2/tweets/{tid}/liking_users", {}, user_auth())) == after["likers"]
        m = get(box, "/2/tweets", {"ids": tid, "tweet.fields": "public_metrics"})["data"][0]["public_metrics"]
        assert (m["quote_count"], m["retweet_count"], m["like_count"], m["reply_count"]) == tuple(
            len(after[w]) for w in ("quotes", "retweeters", "likers", "replies"))
    assert grown
    liked = box.truth("liked", 12)
    assert ids_of(walk(box, "/2/users/12/liked_tweets", {"max_results": 100}, user_auth())) == liked != liked_before
    assert get(box, "/2/users", {"ids": 12, "user.fields": "public_metrics"})["data"][0]["public_metrics"]["like_count"] == len(liked)
    # the new replies are in their threads, and public_metrics of the new tweets count their own engagement
    fresh = engaged(box)
    assert fresh
    for tid in fresh[:2]:
        assert ids_of(walk(box, "/2/tweets/search/recent", {"query": f"conversation_id:{tid}", "max_results": 100},
                           token="next_token")) == box.truth("conversation", tid)
        m = get(box, "/2/tweets", {"ids": tid, "tweet.fields": "public_metrics"})["data"][0]["public_metrics"]
        assert m["reply_count"] == len(box.truth("replies", tid)) and m["like_count"] == len(box.truth("likers", tid))
    counts = box.get("/_sandbox/truth/counts?query=data&granularity=day")
    found = ids_of(walk(box, "/2/tweets/search/recent", {"query": "data", "max_results": 100}, token="next_token"))
    assert counts["total"] == len(found) and counts["buckets"][-1]["end"][:19] == iso_now(box)[:19]


def test_engagement_of_a_world_thousands_of_generations_old() -> None:
    """A sandbox with short steps runs thousands of generations: reading a tweet's metrics must not
    recurse once per generation (it hit Python's recursion limit), and gens() equals its definition."""
    from tweetform.sandbox.world import World
    from tweetform.sandbox.world.evolution import Evolution

    world = World(seed=7, users=300, search_users=300)
    evolution = Evolution(world, step_seconds=60)
    view = evolution.at(1500)
    eng = evolution.engagement
    quiet = next(u for u in range(300) if world._tl(u).length and not any(evolution.new_tweets(u, k) for k in range(1, 1501)))
    assert eng.newest(quiet, 1500) == world.timeline(world.id_of(quiet))[0]
    for u in range(40):
        for tid in view.timeline(world.id_of(u))[:3]:
            assert eng.gens(tid, 30) == [k for k in range(30, 0, -1) if eng.newest(u, k - 1) == tid]


def test_rate_limit_headers_are_the_tables(box: Any) -> None:
    """x-rate-limit-limit of every collection endpoint is its row of the one limits table, per auth kind."""
    tid = engaged(box)[0]
    lid = box.truth("owned_lists", 12)[0]
    paths = {
        "/2/tweets/:id/quote_tweets": f"/2/tweets/{tid}/quote_tweets", "/2/tweets/:id/retweeted_by": f"/2/tweets/{tid}/retweeted_by",
        "/2/tweets/:id/liking_users": f"/2/tweets/{tid}/liking_users", "/2/users/:id/liked_tweets": "/2/users/12/liked_tweets",
        "/2/users/:id/mentions": "/2/users/12/mentions", "/2/lists/:id": f"/2/lists/{lid}",
        "/2/lists/:id/members": f"/2/lists/{lid}/members", "/2/lists/:id/followers": f"/2/lists/{lid}/followers",
        "/2/lists/:id/tweets": f"/2/lists/{lid}/tweets", "/2/users/:id/list_memberships": "/2/users/12/list_memberships",
        "/2/users/:id/owned_lists": "/2/users/12/owned_lists", "/2/users/:id/followed_lists": "/2/users/12/followed_lists",
        "/2/tweets/counts/recent": "/2/tweets/counts/recent?query=data", "/2/tweets/counts/all": "/2/tweets/counts/all?query=data",
    }
    assert set(paths) == set(COLLECTIONS)
    for key, path in paths.items():
        for auth, allowed in zip((user_auth(), app_auth()), limits.limits_of(key)):
            r = requests.get(box.url(path), auth=auth, timeout=30)
            if allowed is None:
                assert r.status_code == 403, (key, r.status_code)
            else:
                assert r.status_code in (200, 429) and int(r.headers["x-rate-limit-limit"]) == allowed, (key, r.status_code)
