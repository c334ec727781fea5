"""API v2 endpoints of the sandbox: ``/2/...``."""

from __future__ import annotations

import re
from typing import Any

from . import paging, render
from .errors import v2_invalid, v2_resource_error
from .params import Params, is_id
from .world import Tweet, User, World

USERNAME = re.compile(r"^[A-Za-z0-9_]{1,15}$")


def _user_fields(p: Params) -> tuple[list[str], list[str], set[str]]:
    return (
        p.fields("user.fields", render.V2_USER_FIELDS),
        p.fields("tweet.fields", render.V2_TWEET_FIELDS),
        set(p.fields("expansions", render.V2_USER_EXPANSIONS)),
    )


def _tweet_fields(p: Params) -> tuple[list[str], list[str], set[str]]:
    for other in render.V2_OTHER_FIELD_PARAMS:
        p.csv(other)
    return (
        p.fields("user.fields", render.V2_USER_FIELDS),
        p.fields("tweet.fields", render.V2_TWEET_FIELDS),
        set(p.fields("expansions", render.V2_TWEET_EXPANSIONS)),
    )


def _path_id(raw: str, p: Params) -> int:
    if not is_id(raw):  # was raw.isdigit(): "²" passed and crashed int() (500 text page)
        raise v2_invalid(f"The `id` query parameter value [{raw}] does not match ^[0-9]{{1,19}}$", {"id": [raw]})
    return int(raw)


def _user_state_error(world: World, uid: int, *, need_access: bool) -> dict[str, Any] | None:
    user = world.user(uid)
    if user is None or user.deleted:
        return v2_resource_error("not_found", str(uid), "id")
    if user.suspended:
        return v2_resource_error("suspended", str(uid), "id")
    if need_access and user.protected:
        return v2_resource_error("protected", str(uid), "id")
    return None


def _offset(p: Params, name: str, salt: object) -> int:
    token = p.get(name)
    if token is None:
        return 0
    offset = paging.decode_token(token, salt)
    if offset is None:
        raise v2_invalid(f"The `{name}` query parameter value [{token}] is not valid", {name: [token]})
    return offset


def _paged(p: Params, items: list, salt: object, size: int, token_param: str) -> tuple[list, dict[str, Any]]:
    offset = _offset(p, token_param, salt)
    chunk, nxt = paging.page(items, offset, size, salt)
    meta: dict[str, Any] = {"result_count": len(chunk)}
    if nxt is not None:
        meta["next_token"] = paging.encode_token(nxt, salt)
    if offset > 0:
        meta["previous_token"] = paging.encode_token(max(0, offset - size), salt)
    return chunk, meta


def follows(world: World, p: Params, raw_id: str, direction: str) -> dict[str, Any]:
    uid = _path_id(raw_id, p)
    user_fields, tweet_fields, expansions = _user_fields(p)
    size = p.int("max_results", 100, 1, 1000) or 100
    error = _user_state_error(world, uid, need_access=True)
    if error is not None:
        return {"errors": [error]}
    ids = world.following(uid) if direction == "following" else world.followers(uid)
    chunk, meta = _paged(p, ids, (direction, uid), size, "pagination_token")
    users = [u for u in (world.user(i) for i in chunk) if u is not None]
    return _envelope([render.v2_user(world, u, user_fields) for u in users], render.v2_user_includes(world, users, expansions, tweet_fields), meta)


def _envelope(data: list, includes: dict, meta: dict | None, errors: list | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if data:
        out["data"] = data
    if includes:
        out["includes"] = includes
    if errors:
        out["errors"] = errors
    if meta is not None:
        out["meta"] = meta
    return out


def _tweet_page(world: World, p: Params, ids: list[int], salt: object, size: int, token_param: str) -> dict[str, Any]:
    user_fields, tweet_fields, expansions = _tweet_fields(p)
    chunk, meta = _paged(p, ids, salt, size, token_param)
    if chunk:
        meta = {"newest_id": str(chunk[0]), "oldest_id": str(chunk[-1]), **meta}
    tweets = [t for t in (world.tweet(i) for i in chunk) if t is not None]
    return _envelope(
        [render.v2_tweet(world, t, tweet_fields) for t in tweets],
        render.v2_tweet_includes(world, tweets, expansions, user_fields, tweet_fields),
        meta,
    )


def _time_filter(world: World, ids: list[int], p: Params) -> list[int]:
    since_id, until_id = p.id("since_id"), p.id("until_id")
    start, end = p.time("start_time"), p.time("end_time")
    if since_id is not None:
        ids = [i for i in ids if i > since_id]
    if until_id is not None:
        ids = [i for i in ids if i < until_id]
    if start is not None or end is not None:
        kept = []
        for i in ids:
            t = world.tweet(i)
            if t is None:
                continue
            if (start is None or t.created_at >= start) and (end is None or t.created_at < end):
                kept.append(i)
        ids = kept
    return ids


def user_tweets(world: World, p: Params, raw_id: str) -> dict[str, Any]:
    uid = _path_id(raw_id, p)
    size = p.int("max_results", 10, 5, 100) or 10
    exclude = set(p.csv("exclude", check=lambda v: v in ("retweets", "replies")))
    error = _user_state_error(world, uid, need_access=True)
    if error is not None:
        return {"errors": [error]}
    cap = 800 if "replies" in exclude else 3200
    ids = world.timeline(uid)[:3200]
    if exclude:
        kept = []
        for i in ids:
            t = world.tweet(i)
            if t is None or ("retweets" in exclude and t.retweeted_status_id) or ("replies" in exclude and t.in_reply_to_status_id):
                continue
            kept.append(i)
        ids = kept
    ids = _time_filter(world, ids[:cap], p)
    salt = ("tweets", uid, tuple(sorted(exclude)), p.get("since_id"), p.get("until_id"), p.get("start_time"), p.get("end_time"))
    return _tweet_page(world, p, ids, salt, size, "pagination_token")


def search(world: World, p: Params, archive: bool) -> dict[str, Any]:
    query = p.get("query")
    if query is None:
        raise v2_invalid("The `query` query parameter can not be empty", {"query": []})
    limit = 1024 if archive else 512
    if len(query) > limit:
        raise v2_invalid(f"The `query` query parameter value is longer than {limit} characters", {"query": [query[:40]]})
    size = p.int("max_results", 10, 10, 500 if archive else 100) or 10
    try:
        ids = world.search(query, archive=archive)
    except ValueError as exc:
        raise v2_invalid(f"There were errors processing your request: {exc}", {"query": [query]}) from None
    ids = _time_filter(world, ids, p)
    salt = ("search", archive, query, p.get("since_id"), p.get("until_id"), p.get("start_time"), p.get("end_time"))
    return _tweet_page(world, p, ids, salt, size, "next_token")


def users_by_ids(world: World, p: Params) -> dict[str, Any]:
    raw = p.csv("ids", 100)
    if not raw:
        raise v2_invalid("The `ids` query parameter can not be empty", {"ids": []})
    bad = [r for r in raw if not is_id(r)]  # was r.isdigit(): "²" crashed int()
    if bad:
        raise v2_invalid(f"The `ids` query parameter value [{bad[0]}] is not valid", {"ids": [bad[0]]})
    user_fields, tweet_fields, expansions = _user_fields(p)
    users: list[User] = []
    errors = []
    for r in raw:
        u = world.user(int(r))
        if u is None or u.deleted:
            errors.append(v2_resource_error("not_found", r, "ids"))
        elif u.suspended:
            errors.append(v2_resource_error("suspended", r, "ids"))
        else:
            users.append(u)
    return _envelope([render.v2_user(world, u, user_fields) for u in users], render.v2_user_includes(world, users, expansions, tweet_fields), None, errors)


def users_by_names(world: World, p: Params) -> dict[str, Any]:
    raw = p.csv("usernames", 100)
    if not raw:
        raise v2_invalid("The `usernames` query parameter can not be empty", {"usernames": []})
    bad = [r for r in raw if not USERNAME.match(r)]
    if bad:
        raise v2_invalid(f"The `usernames` query parameter value [{bad[0]}] does not match ^[A-Za-z0-9_]{{1,15}}$", {"usernames": [bad[0]]})
    user_fields, tweet_fields, expansions = _user_fields(p)
    users: list[User] = []
    errors = []
    for name in raw:
        u = world.user_by_screen_name(name)
        if u is None or u.deleted:
            err = v2_resource_error("not_found", name, "usernames")
            err["detail"] = f"Could not find user with usernames: [{name}]."
            errors.append(err)
        elif u.suspended:
            errors.append(v2_resource_error("suspended", name, "usernames"))
        else:
            users.append(u)
    return _envelope([render.v2_user(world, u, user_fields) for u in users], render.v2_user_includes(world, users, expansions, tweet_fields), None, errors)


def tweets_by_ids(world: World, p: Params) -> dict[str, Any]:
    raw = p.csv("ids", 100)
    if not raw:
        raise v2_invalid("The `ids` query parameter can not be empty", {"ids": []})
    bad = [r for r in raw if not is_id(r)]  # was r.isdigit(): "²" crashed int()
    if bad:
        raise v2_invalid(f"The `ids` query parameter value [{bad[0]}] is not valid", {"ids": [bad[0]]})
    user_fields, tweet_fields, expansions = _tweet_fields(p)
    tweets: list[Tweet] = []
    errors = []
    for r in raw:
        t = world.tweet(int(r))
        if t is None or t.deleted:
            errors.append(v2_resource_error("not_found", r, "ids", "tweet"))
            continue
        author = world.user(t.author_id)
        if author is None or author.deleted or author.suspended:
            errors.append(v2_resource_error("not_found", r, "ids", "tweet"))
        elif author.protected:
            errors.append(v2_resource_error("protected", r, "ids", "tweet"))
        else:
            tweets.append(t)
    return _envelope(
        [render.v2_tweet(world, t, tweet_fields) for t in tweets],
        render.v2_tweet_includes(world, tweets, expansions, user_fields, tweet_fields),
        None,
        errors,
    )


#: (regex on the path after /2/, endpoint key for limits, handler(world, params, *groups))
ROUTES: list[tuple[re.Pattern[str], str, Any]] = [
    (re.compile(r"^users/([^/]+)/following$"), "/2/users/:id/following", lambda w, p, i: follows(w, p, i, "following")),
    (re.compile(r"^users/([^/]+)/followers$"), "/2/users/:id/followers", lambda w, p, i: follows(w, p, i, "followers")),
    (re.compile(r"^users/([^/]+)/tweets$"), "/2/users/:id/tweets", user_tweets),
    (re.compile(r"^tweets/search/recent$"), "/2/tweets/search/recent", lambda w, p: search(w, p, False)),
    (re.compile(r"^tweets/search/all$"), "/2/tweets/search/all", lambda w, p: search(w, p, True)),
    (re.compile(r"^users/by$"), "/2/users/by", users_by_names),
    (re.compile(r"^users$"), "/2/users", users_by_ids),
    (re.compile(r"^tweets$"), "/2/tweets", tweets_by_ids),
]
