"""Endpoints, their URLs and how each one pages: X's two API versions and Bluesky's XRPC.

The endpoint ``key`` is the name the API uses for rate limits (``/friends/ids``,
``/2/users/:id/following``); quota is tracked per credential and key. Bluesky's
methods (keyed by NSID) share one rate limit per client IP (``quota="xrpc"``) and
are served by the AppView or, for sessions and authenticated calls, the PDS (``host``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import parse_qsl, urlencode

V2_USER_FIELDS = (
    "created_at,description,entities,id,location,name,pinned_tweet_id,profile_image_url,"
    "protected,public_metrics,url,username,verified,withheld"
)
V2_TWEET_FIELDS = (
    "attachments,author_id,context_annotations,conversation_id,created_at,edit_history_tweet_ids,"
    "entities,geo,id,in_reply_to_user_id,lang,possibly_sensitive,public_metrics,referenced_tweets,"
    "reply_settings,source,text,withheld"
)
V2_TWEET_EXPANSIONS = (
    "author_id,entities.mentions.username,in_reply_to_user_id,referenced_tweets.id,referenced_tweets.id.author_id"
)
#: what twarc2 asks for, so pages stay readable by the twarc2 tools
V2_TWEET_PARAMS = {"tweet.fields": V2_TWEET_FIELDS, "user.fields": V2_USER_FIELDS, "expansions": V2_TWEET_EXPANSIONS}
V2_USER_PARAMS = {"user.fields": V2_USER_FIELDS, "expansions": "pinned_tweet_id", "tweet.fields": V2_TWEET_FIELDS}


@dataclass(frozen=True)
class Endpoint:
    key: str  # rate-limit name
    version: str  # "1.1" or "2"
    path: str  # may contain {id}
    paging: str  # "cursor", "max_id", "next_results", "token", "none"
    page_param: str = ""  # v2: pagination_token or next_token
    app_only: bool = False  # only an app-only (bearer) credential may call it
    user_only: bool = False  # only a user-context credential may call it (a bearer gets 403)
    pages: tuple[int, int] = (0, 0)  # v2: the smallest and largest max_results it accepts; (0, 0): no page size
    host: str = "x"  # "x" (TWEETFORM_API_BASE), "appview" or "pds" (TWEETFORM_BLUESKY_APPVIEW / _PDS)
    quota: str = ""  # the rate-limit pool it draws on, when not its own key
    session: bool = False  # Bluesky: needs an account session (a Bearer access token)

    @property
    def bucket(self) -> str:
        """The quota pool: its own key, or a pool shared with other endpoints (Bluesky's per-IP limit)."""
        return self.quota or self.key

    @property
    def min_page(self) -> int:
        """The smallest page it may be asked for (search and quote_tweets refuse fewer than 10)."""
        return max(1, self.pages[0])

    def url(self, base: str, params: dict[str, Any], path_id: str | int | None = None) -> str:
        path = self.path.format(id=path_id) if "{id}" in self.path else self.path
        # commas stay literal: 100 ids per look-up must fit comfortably in a URL; XRPC arrays repeat the key
        pairs = [(k, x) for k, v in params.items() for x in (v if isinstance(v, (list, tuple)) else [v])]
        query = urlencode([(k, v) for k, v in pairs if v is not None and v != ""], safe=",")
        return f"{base.rstrip('/')}{path}" + (f"?{query}" if query else "")


PAGE_SIZE_PARAMS = ("max_results", "count", "limit")  # v2's, v1.1's and XRPC's page size


def page_size_param(params: Mapping[str, Any]) -> str | None:
    """The parameter that sets a request's page size, if it has one."""
    return next((name for name in PAGE_SIZE_PARAMS if name in params), None)


def v1(name: str, paging: str) -> Endpoint:
    return Endpoint("/" + name, "1.1", f"/1.1/{name}.json", paging)


BLUESKY = "bluesky"  # the api of Bluesky's endpoints (and of -a api=bluesky)
XRPC_QUOTA = "xrpc"  # their one rate-limit pool per IP


def xrpc(nsid: str, paging: str = "xrpc", *, host: str = "appview", session: bool = False) -> Endpoint:
    """A Bluesky method: ``/xrpc/<nsid>``; lists page with an opaque ``cursor`` (none: the end)."""
    return Endpoint(nsid, BLUESKY, f"/xrpc/{nsid}", paging, "cursor", host=host, quota=XRPC_QUOTA, session=session,
                    pages=(1, 100) if paging == "xrpc" else (0, 0))


ENDPOINTS: dict[str, Endpoint] = {
    e.key: e
    for e in (
        v1("friends/ids", "cursor"),
        v1("followers/ids", "cursor"),
        v1("friends/list", "cursor"),
        v1("followers/list", "cursor"),
        v1("statuses/user_timeline", "max_id"),
        v1("users/lookup", "none"),
        v1("search/tweets", "next_results"),
        v1("statuses/lookup", "none"),
        Endpoint("/users/show/:id", "1.1", "/1.1/users/show.json", "none"),
        Endpoint("/application/rate_limit_status", "1.1", "/1.1/application/rate_limit_status.json", "none"),
        Endpoint("/2/users/:id/following", "2", "/2/users/{id}/following", "token", "pagination_token", pages=(1, 1000)),
        Endpoint("/2/users/:id/followers", "2", "/2/users/{id}/followers", "token", "pagination_token", pages=(1, 1000)),
        Endpoint("/2/users/:id/tweets", "2", "/2/users/{id}/tweets", "token", "pagination_token", pages=(5, 100)),
        Endpoint("/2/tweets/search/recent", "2", "/2/tweets/search/recent", "token", "next_token", pages=(10, 100)),
        Endpoint("/2/tweets/search/all", "2", "/2/tweets/search/all", "token", "next_token", app_only=True, pages=(10, 500)),
        Endpoint("/2/users", "2", "/2/users", "none"),
        Endpoint("/2/users/by", "2", "/2/users/by", "none"),
        Endpoint("/2/tweets", "2", "/2/tweets", "none"),
        # collections (issue 17; shared/twitter-api.md "Collections")
        Endpoint("/2/tweets/:id/quote_tweets", "2", "/2/tweets/{id}/quote_tweets", "token", "pagination_token", pages=(10, 100)),
        Endpoint("/2/tweets/:id/retweeted_by", "2", "/2/tweets/{id}/retweeted_by", "token", "pagination_token", pages=(1, 100)),
        Endpoint("/2/tweets/:id/liking_users", "2", "/2/tweets/{id}/liking_users", "token", "pagination_token", user_only=True, pages=(1, 100)),
        Endpoint("/2/users/:id/liked_tweets", "2", "/2/users/{id}/liked_tweets", "token", "pagination_token", user_only=True, pages=(5, 100)),
        Endpoint("/2/users/:id/mentions", "2", "/2/users/{id}/mentions", "token", "pagination_token", pages=(5, 100)),
        Endpoint("/2/lists/:id", "2", "/2/lists/{id}", "none"),
        Endpoint("/2/lists/:id/members", "2", "/2/lists/{id}/members", "token", "pagination_token", pages=(1, 100)),
        Endpoint("/2/lists/:id/followers", "2", "/2/lists/{id}/followers", "token", "pagination_token", pages=(1, 100)),
        Endpoint("/2/lists/:id/tweets", "2", "/2/lists/{id}/tweets", "token", "pagination_token", pages=(1, 100)),
        Endpoint("/2/users/:id/list_memberships", "2", "/2/users/{id}/list_memberships", "token", "pagination_token", pages=(1, 100)),
        Endpoint("/2/users/:id/owned_lists", "2", "/2/users/{id}/owned_lists", "token", "pagination_token", pages=(1, 100)),
        Endpoint("/2/users/:id/followed_lists", "2", "/2/users/{id}/followed_lists", "token", "pagination_token", pages=(1, 100)),
        Endpoint("/2/tweets/counts/recent", "2", "/2/tweets/counts/recent", "token", "next_token", app_only=True),
        Endpoint("/2/tweets/counts/all", "2", "/2/tweets/counts/all", "token", "next_token", app_only=True),
        # Bluesky (issue 19; shared/bluesky-api.md)
        xrpc("app.bsky.graph.getFollows"),
        xrpc("app.bsky.graph.getFollowers"),
        xrpc("app.bsky.feed.getAuthorFeed"),
        xrpc("app.bsky.feed.searchPosts", host="pds", session=True),
        xrpc("app.bsky.actor.getProfiles", "none"),
        xrpc("app.bsky.feed.getPosts", "none"),
        xrpc("app.bsky.feed.getPostThread", "none"),
        xrpc("app.bsky.feed.getQuotes"),
        xrpc("app.bsky.feed.getRepostedBy"),
        xrpc("app.bsky.feed.getLikes"),
        xrpc("com.atproto.identity.resolveHandle", "none"),
    )
}


def next_page_params(endpoint: Endpoint, params: dict[str, Any], body: Any) -> dict[str, Any] | None:
    """Query parameters of the next page, or None when this page was the last.

    Only the API's own end marker ends pagination: a short page is not the last.
    """
    if endpoint.paging == "cursor":
        cursor = body.get("next_cursor_str") or str(body.get("next_cursor", 0))
        return None if cursor in ("0", "", "None") else {**params, "cursor": cursor}
    if endpoint.paging == "xrpc":  # an opaque cursor, echoed verbatim; none (or the same again) is the end
        cursor = body.get("cursor") if isinstance(body, dict) else None
        return {**params, "cursor": cursor} if cursor and cursor != params.get("cursor") else None
    if endpoint.paging == "token":
        token = (body.get("meta") or {}).get("next_token") if isinstance(body, dict) else None
        return {**params, endpoint.page_param: token} if token else None
    if endpoint.paging == "max_id":
        if not isinstance(body, list) or not body:
            return None
        lowest = min(int(t["id_str"]) if "id_str" in t else int(t["id"]) for t in body)
        return {**params, "max_id": str(lowest - 1)}
    if endpoint.paging == "next_results":
        nxt = (body.get("search_metadata") or {}).get("next_results") if isinstance(body, dict) else None
        if not nxt:
            return None
        merged = dict(params)
        merged.update(parse_qsl(nxt.lstrip("?"), keep_blank_values=True))
        return merged
    return None
