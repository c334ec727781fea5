"""API v1.1 endpoints of the sandbox: ``/1.1/<path>.json``."""

from __future__ import annotations

import bisect
from typing import Any
from urllib.parse import urlencode

from . import paging, render
from .errors import v1_error, v1_not_authorized, v1_page_not_found
from .params import Params, is_id
from .world import User, World


def resolve_user(world: World, p: Params, *, list_access: bool, path: str) -> User:
    """The user a request names; errors as the API answers them."""
    uid = p.id("user_id")
    name = p.get("screen_name")
    if uid is None and name is None:
        raise v1_error(400, 38, "user_id or screen_name parameter is missing.")
    user = world.user(uid) if uid is not None else world.user_by_screen_name(name or "")
    if user is None or user.deleted:
        raise v1_page_not_found()
    if user.suspended:
        raise v1_error(403, 63, "User has been suspended.")
    if list_access and user.protected:
        raise v1_not_authorized(path)
    return user


def _cursored(world: World, p: Params, ids: list[int], salt: object, default: int, maximum: int) -> tuple[list[int], dict[str, Any]]:
    count = p.int("count", default, 1, maximum) or default
    raw = p.get("cursor", "-1")
    try:
        offset = paging.decode_cursor(int(raw or "-1"), salt)
    except ValueError:
        offset = None
    if offset is None:
        raise v1_error(400, 44, "cursor parameter is invalid.")
    chunk, nxt = paging.page(ids, offset, count, salt)
    next_cursor = paging.encode_cursor(nxt, salt) if nxt is not None else 0
    prev_cursor = -paging.encode_cursor(max(0, offset - count), salt) if offset > 0 else 0
    return chunk, {
        "next_cursor": next_cursor,
        "next_cursor_str": str(next_cursor),
        "previous_cursor": prev_cursor,
        "previous_cursor_str": str(prev_cursor),
        "total_count": None,
    }


def _graph(world: World, p: Params, path: str, direction: str) -> list[int]:
    user = resolve_user(world, p, list_access=True, path=path)
    return world.following(user.id) if direction == "friends" else world.followers(user.id)


def graph_ids(world: World, p: Params, path: str, direction: str) -> dict[str, Any]:
    ids = _graph(world, p, path, direction)
    chunk, cursors = _cursored(world, p, ids, (direction, "ids", p.get("user_id"), p.get("screen_name")), 5000, 5000)
    out: dict[str, Any] = {"ids": [str(i) for i in chunk] if p.bool("stringify_ids") else chunk}
    out.update(cursors)
    return out


def graph_list(world: World, p: Params, path: str, direction: str) -> dict[str, Any]:
    ids = _graph(world, p, path, direction)
    chunk, cursors = _cursored(world, p, ids, (direction, "list", p.get("user_id"), p.get("screen_name")), 20, 200)
    skip_status = p.bool("skip_status")
    users = [world.user(i) for i in chunk]
    out: dict[str, Any] = {"users": [render.v1_user(world, u, include_status=not skip_status) for u in users if u is not None]}
    out.update(cursors)
    return out


def _id_window(ids_desc: list[int], since_id: int | None, max_id: int | None) -> list[int]:
    """ids newer than since_id (exclusive) and up to max_id (inclusive), newest first."""
    asc = [-i for i in ids_desc]  # ascending view for bisect
    lo = bisect.bisect_left(asc, -max_id) if max_id is not None else 0
    hi = bisect.bisect_left(asc, -since_id) if since_id is not None else len(asc)
    return ids_desc[lo:hi]


def user_timeline(world: World, p: Params, path: str) -> list[Any]:
    user = resolve_user(world, p, list_access=True, path=path)
    count = p.int("count", 20, 1, 200) or 20
    ids = _id_window(world.reachable_timeline(user.id), p.id("since_id"), p.id("max_id"))[:count]
    tweets = [world.tweet(i) for i in ids]
    include_rts = p.bool("include_rts", True)
    exclude_replies = p.bool("exclude_replies")
    # like the API, filters apply after the page is cut (pages come back short)
    kept = [
        t for t in tweets
        if t is not None and (include_rts or not t.retweeted_status_id) and not (exclude_replies and t.in_reply_to_status_id)
    ]
    extended = p.get("tweet_mode") == "extended"
    return [render.v1_tweet(world, t, trim_user=p.bool("trim_user"), extended=extended) for t in kept]


def _lookup_users(world: World, p: Params) -> list[User]:
    ids = p.csv("user_id", 100, is_id)  # was str.isdigit: "²" crashed int()
    names = p.csv("screen_name", 100)
    if len(ids) + len(names) > 100:
        raise v1_error(400, 18, "Too many terms specified in query.")
    if not ids and not names:
        raise v1_error(400, 38, "user_id or screen_name parameter is missing.")
    found: dict[int, User] = {}
    for u in [world.user(int(i)) for i in ids] + [world.user_by_screen_name(n) for n in names]:
        if u is not None and not u.deleted and not u.suspended:
            found.setdefault(u.id, u)
    return list(found.values())


def users_lookup(world: World, p: Params, path: str) -> list[Any]:
    users = _lookup_users(world, p)
    if not users:
        raise v1_error(404, 17, "No user matches for specified terms.")
    return [render.v1_user(world, u) for u in users]


def users_show(world: World, p: Params, path: str) -> dict[str, Any]:
    uid = p.id("user_id")
    name = p.get("screen_name")
    if uid is None and name is None:
        raise v1_error(400, 38, "user_id or screen_name parameter is missing.")
    user = world.user(uid) if uid is not None else world.user_by_screen_name(name or "")
    if user is None or user.deleted:
        raise v1_error(404, 50, "User not found.")
    if user.suspended:
        raise v1_error(403, 63, "User has been suspended.")
    return render.v1_user(world, user)


def statuses_lookup(world: World, p: Params, path: str) -> Any:
    ids = p.csv("id", 100, is_id)  # was str.isdigit: "²" crashed int()
    if not ids:
        raise v1_error(400, 38, "id parameter is missing.")
    trim_user = p.bool("trim_user")
    extended = p.get("tweet_mode") == "extended"
    rendered: dict[str, Any] = {}
    for raw in ids:
        t = world.tweet(int(raw))
        visible = t is not None and not t.deleted and _author_visible(world, t.author_id)
        rendered[raw] = render.v1_tweet(world, t, trim_user=trim_user, extended=extended) if visible and t else None
    if p.bool("map"):
        return {"id": rendered}
    return [v for v in rendered.values() if v is not None]


def _author_visible(world: World, uid: int) -> bool:
    u = world.user(uid)
    return u is not None and not (u.protected or u.suspended or u.deleted)


def search_tweets(world: World, p: Params, path: str) -> dict[str, Any]:
    q = p.get("q")
    if q is None:
        raise v1_error(400, 25, "Query parameters are missing.")
    if len(q) > 500:
        raise v1_error(400, 195, "Missing or invalid url parameter.")
    count = p.int("count", 15, 1, 100) or 15
    geocode = p.get("geocode")
    if geocode is not None and not _valid_geocode(geocode):
        raise v1_error(400, 44, "geocode parameter is invalid.")
    query = q + (f" lang:{p.get('lang')}" if p.get("lang") else "")
    try:
        ids = world.search(query)
    except ValueError:
        raise v1_error(400, 44, "q parameter is invalid.") from None
    since_id, max_id = p.id("since_id"), p.id("max_id")
    window = _id_window(ids, since_id, max_id)
    chunk = window[:count]
    tweets = [world.tweet(i) for i in chunk]
    extended = p.get("tweet_mode") == "extended"
    meta: dict[str, Any] = {
        "completed_in": 0.012,
        "max_id": chunk[0] if chunk else 0,
        "max_id_str": str(chunk[0] if chunk else 0),
        "query": urlencode({"q": q})[2:],
        "refresh_url": "?" + urlencode({"since_id": chunk[0] if chunk else 0, "q": q, "include_entities": 1}),
        "count": count,
        "since_id": since_id or 0,
        "since_id_str": str(since_id or 0),
    }
    if len(window) > count:
        nxt: dict[str, Any] = {"max_id": chunk[-1] - 1, "q": q, "count": count, "include_entities": 1}
        for extra in ("lang", "geocode", "result_type", "tweet_mode"):
            if p.get(extra):
                nxt[extra] = p.get(extra)
        meta["next_results"] = "?" + urlencode(nxt)
    return {"statuses": [render.v1_tweet(world, t, extended=extended) for t in tweets if t is not None], "search_metadata": meta}


def _valid_geocode(value: str) -> bool:
    parts = value.split(",")
    if len(parts) != 3 or not parts[2].endswith(("km", "mi")):
        return False
    try:
        lat, lon, radius = float(parts[0]), float(parts[1]), float(parts[2][:-2])
    except ValueError:
        return False
    return -90 <= lat <= 90 and -180 <= lon <= 180 and radius > 0


#: path without .json -> (endpoint key for limits, handler)
ROUTES: dict[str, tuple[str, Any]] = {
    "friends/ids": ("/friends/ids", lambda w, p, path: graph_ids(w, p, path, "friends")),
    "followers/ids": ("/followers/ids", lambda w, p, path: graph_ids(w, p, path, "followers")),
    "friends/list": ("/friends/list", lambda w, p, path: graph_list(w, p, path, "friends")),
    "followers/list": ("/followers/list", lambda w, p, path: graph_list(w, p, path, "followers")),
    "statuses/user_timeline": ("/statuses/user_timeline", user_timeline),
    "users/lookup": ("/users/lookup", users_lookup),
    "users/show": ("/users/show/:id", users_show),
    "search/tweets": ("/search/tweets", search_tweets),
    "statuses/lookup": ("/statuses/lookup", statuses_lookup),
}

#: families reported by application/rate_limit_status
FAMILIES = {
    "friends": ["/friends/ids", "/friends/list"],
    "followers": ["/followers/ids", "/followers/list"],
    "statuses": ["/statuses/user_timeline", "/statuses/lookup"],
    "users": ["/users/lookup", "/users/show/:id"],
    "search": ["/search/tweets"],
    "application": ["/application/rate_limit_status"],
}


def rate_limit_status(limiter: Any, alias: str, kind: str, p: Params) -> dict[str, Any]:
    wanted = p.csv("resources") or list(FAMILIES)
    resources: dict[str, Any] = {}
    for family in wanted:
        if family not in FAMILIES:
            continue
        resources[family] = {}
        for endpoint in FAMILIES[family]:
            d = limiter.peek(alias, kind, endpoint)
            resources[family][endpoint] = {"limit": d.limit, "remaining": d.remaining, "reset": d.reset}
    # The real API echoes the access token here; the sandbox names the alias so no
    # credential material can end up in a crawl's output.
    context = {"access_token": alias} if kind == "user" else {"application": alias}
    return {"rate_limit_context": context, "resources": resources}
