"""API v2 collection endpoints of the sandbox (issue 17): quotes, retweeters, likes,
mentions, lists, counts. Shapes, page sizes and errors: shared/twitter-api.md, "Collections"."""

from __future__ import annotations

import re
from typing import Any

from tweetform.api.endpoints import ENDPOINTS

from . import render
from .api_v2 import _envelope, _paged, _path_id, _time_filter, _tweet_fields, _user_fields, _user_state_error
from .errors import v2_resource_error
from .params import Params
from .world import World

#: the newest mentions the mentions endpoint reaches
MENTIONS_CAP = 800


def _size(p: Params, endpoint: str, default: int) -> int:
    """``max_results``, within the endpoint's bounds from the one endpoint table (a 400 outside them)."""
    lo, hi = ENDPOINTS[endpoint].pages
    return p.int("max_results", default, lo, hi) or default


def _tweet_state_error(world: World, tid: int) -> dict[str, Any] | None:
    """The partial error for a tweet that cannot be engaged with: unknown, deleted, or its author's state."""
    t = world.tweet(tid)
    author = world.user(t.author_id) if t is not None and not t.deleted else None
    if author is None or author.deleted or author.suspended:
        return v2_resource_error("not_found", str(tid), "id", "tweet")
    if author.protected:
        return v2_resource_error("protected", str(tid), "id", "tweet")
    return None


def _user_page(world: World, p: Params, ids: list[int], salt: object, size: int) -> dict[str, Any]:
    user_fields, tweet_fields, expansions = _user_fields(p)
    chunk, meta = _paged(p, ids, salt, size, "pagination_token")
    users = [u for u in (world.user(i) for i in chunk) if u is not None]
    return _envelope([render.v2_user(world, u, user_fields) for u in users],
                     render.v2_user_includes(world, users, expansions, tweet_fields), meta)


def _tweets_page(world: World, p: Params, ids: list[int], salt: object, size: int, *, id_range: bool) -> dict[str, Any]:
    """A page of tweets; ``id_range`` adds ``newest_id``/``oldest_id`` to meta (timelines, mentions)."""
    user_fields, tweet_fields, expansions = _tweet_fields(p)
    chunk, meta = _paged(p, ids, salt, size, "pagination_token")
    if chunk and id_range:
        meta = {"newest_id": str(chunk[0]), "oldest_id": str(chunk[-1]), **meta}
    tweets = [t for t in (world.tweet(i) for i in chunk) if t is not None]
    return _envelope([render.v2_tweet(world, t, tweet_fields) for t in tweets],
                     render.v2_tweet_includes(world, tweets, expansions, user_fields, tweet_fields), meta)


def quote_tweets(world: World, p: Params, raw_id: str) -> dict[str, Any]:
    tid = _path_id(raw_id, p)
    size = _size(p, "/2/tweets/:id/quote_tweets", 10)
    p.csv("exclude", check=lambda v: v in ("retweets", "replies"))  # quotes are neither: nothing to leave out
    error = _tweet_state_error(world, tid)
    if error is not None:
        return {"errors": [error]}
    page = _tweets_page(world, p, world.quote_ids(tid), ("quotes", tid), size, id_range=False)
    page["meta"].pop("previous_token", None)  # quote_tweets' meta: result_count and next_token only
    return page


def retweeted_by(world: World, p: Params, raw_id: str) -> dict[str, Any]:
    tid = _path_id(raw_id, p)
    size = _size(p, "/2/tweets/:id/retweeted_by", 100)
    error = _tweet_state_error(world, tid)
    if error is not None:
        return {"errors": [error]}
    return _user_page(world, p, world.retweeter_ids(tid), ("retweeted_by", tid), size)


def liking_users(world: World, p: Params, raw_id: str) -> dict[str, Any]:
    tid = _path_id(raw_id, p)
    size = _size(p, "/2/tweets/:id/liking_users", 100)
    error = _tweet_state_error(world, tid)
    if error is not None:
        return {"errors": [error]}
    return _user_page(world, p, world.liker_ids(tid), ("liking_users", tid), size)


def liked_tweets(world: World, p: Params, raw_id: str) -> dict[str, Any]:
    uid = _path_id(raw_id, p)
    size = _size(p, "/2/users/:id/liked_tweets", 100)
    error = _user_state_error(world, uid, need_access=True)
    if error is not None:
        return {"errors": [error]}
    return _tweets_page(world, p, world.liked_ids(uid), ("liked_tweets", uid), size, id_range=False)


def mentions(world: World, p: Params, raw_id: str) -> dict[str, Any]:
    uid = _path_id(raw_id, p)
    size = _size(p, "/2/users/:id/mentions", 10)
    error = _user_state_error(world, uid, need_access=True)
    if error is not None:
        return {"errors": [error]}
    ids = _time_filter(world, world.mention_ids(uid)[:MENTIONS_CAP], p)
    salt = ("mentions", uid, p.get("since_id"), p.get("until_id"), p.get("start_time"), p.get("end_time"))
    return _tweets_page(world, p, ids, salt, size, id_range=True)


#: (regex on the path after /2/, endpoint key for limits, handler(world, params, *groups))
ROUTES: list[tuple[re.Pattern[str], str, Any]] = [
    (re.compile(r"^tweets/([^/]+)/quote_tweets$"), "/2/tweets/:id/quote_tweets", quote_tweets),
    (re.compile(r"^tweets/([^/]+)/retweeted_by$"), "/2/tweets/:id/retweeted_by", retweeted_by),
    (re.compile(r"^tweets/([^/]+)/liking_users$"), "/2/tweets/:id/liking_users", liking_users),
    (re.compile(r"^users/([^/]+)/liked_tweets$"), "/2/users/:id/liked_tweets", liked_tweets),
    (re.compile(r"^users/([^/]+)/mentions$"), "/2/users/:id/mentions", mentions),
]
