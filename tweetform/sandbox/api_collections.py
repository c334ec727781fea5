"""API v2 collection endpoints of the sandbox (issue 17): quotes, retweeters, likes,
mentions, lists, counts. Shapes, page sizes and errors: shared/twitter-api.md, "Collections"."""

from __future__ import annotations

import re
from typing import Any

from tweetform.api.endpoints import ENDPOINTS

from . import paging, render
from . import tweet_counts
from .api_v2 import _envelope, _offset, _paged, _path_id, _time_filter, _tweet_fields, _user_fields, _user_state_error
from .errors import v2_invalid, v2_resource_error
from .params import Params, is_id
from .world import World
from .world.lists import ListRecord

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


V2_LIST_FIELDS = frozenset("created_at description follower_count id member_count name owner_id private".split())
V2_LIST_EXPANSIONS = frozenset({"owner_id"})


def v2_list(rec: ListRecord, fields: list[str]) -> dict[str, Any]:
    """A list object: ``{id, name}`` by default (tweepy's recording), the asked-for fields beside."""
    out: dict[str, Any] = {"id": str(rec.id), "name": rec.name}
    for f in fields:
        if f == "created_at":
            out[f] = render.v2_date(rec.created_at)
        elif f == "description":
            out[f] = rec.description
        elif f == "follower_count":
            out[f] = len(rec.followers)
        elif f == "member_count":
            out[f] = len(rec.members)
        elif f == "owner_id":
            out[f] = str(rec.owner_id)
        elif f == "private":
            out[f] = False
    return out


def _list_fields(p: Params) -> tuple[list[str], list[str], set[str]]:
    return p.fields("list.fields", V2_LIST_FIELDS), p.fields("user.fields", render.V2_USER_FIELDS), set(p.fields("expansions", V2_LIST_EXPANSIONS))


def _lists_answer(world: World, p: Params, recs: list[ListRecord], meta: dict | None) -> dict[str, Any]:
    list_fields, user_fields, expansions = _list_fields(p)
    includes: dict[str, Any] = {}
    if "owner_id" in expansions:
        owners = dict.fromkeys(r.owner_id for r in recs)
        users = [u for u in (world.user(o) for o in owners) if u is not None]
        if users:
            includes["users"] = [render.v2_user(world, u, user_fields) for u in users]
    data = [v2_list(r, list_fields) for r in recs]
    return _envelope(data, includes, meta)


def _numeric_paged(p: Params, items: list, salt: object, size: int) -> tuple[list, dict[str, Any]]:
    """A page cut with numeric pagination tokens (list members, followers, memberships: the API's are numbers)."""
    raw = p.get("pagination_token")
    offset = 0
    if raw is not None:
        decoded = paging.decode_cursor(int(raw), salt) if is_id(raw) else None
        if decoded is None:
            raise v2_invalid(f"The `pagination_token` query parameter value [{raw}] is not valid", {"pagination_token": [raw]})
        offset = decoded
    chunk, nxt = paging.page(items, offset, size, salt)
    meta: dict[str, Any] = {"result_count": len(chunk)}
    if nxt is not None:
        meta["next_token"] = str(paging.encode_cursor(nxt, salt))
    if offset > 0:
        meta["previous_token"] = str(paging.encode_cursor(max(0, offset - size), salt))
    return chunk, meta


def _list_id(world: World, p: Params, raw_id: str) -> tuple[int, ListRecord | None]:
    lid = _path_id(raw_id, p)
    return lid, world.list_record(lid)


def _list_missing(lid: int) -> dict[str, Any]:
    return {"errors": [v2_resource_error("not_found", str(lid), "id", "list")]}


def list_lookup(world: World, p: Params, raw_id: str) -> dict[str, Any]:
    lid, rec = _list_id(world, p, raw_id)
    _list_fields(p)
    if rec is None:
        return _list_missing(lid)
    answer = _lists_answer(world, p, [rec], None)
    answer["data"] = answer["data"][0]  # one list: an object, not an array
    return answer


def list_users(world: World, p: Params, raw_id: str, relation: str) -> dict[str, Any]:
    lid, rec = _list_id(world, p, raw_id)
    size = _size(p, f"/2/lists/:id/{relation}", 100)
    user_fields, tweet_fields, expansions = _user_fields(p)
    if rec is None:
        return _list_missing(lid)
    ids = list(rec.members if relation == "members" else rec.followers)
    chunk, meta = _numeric_paged(p, ids, (relation, lid), size)
    users = [u for u in (world.user(i) for i in chunk) if u is not None]
    return _envelope([render.v2_user(world, u, user_fields) for u in users],
                     render.v2_user_includes(world, users, expansions, tweet_fields), meta)


def list_tweets(world: World, p: Params, raw_id: str) -> dict[str, Any]:
    lid, rec = _list_id(world, p, raw_id)
    size = _size(p, "/2/lists/:id/tweets", 100)
    if rec is None:
        _tweet_fields(p)
        return _list_missing(lid)
    return _tweets_page(world, p, world.list_tweet_ids(lid), ("list_tweets", lid), size, id_range=False)


def user_lists(world: World, p: Params, raw_id: str, relation: str) -> dict[str, Any]:
    uid = _path_id(raw_id, p)
    size = _size(p, f"/2/users/:id/{relation}", 100)
    _list_fields(p)
    error = _user_state_error(world, uid, need_access=True)
    if error is not None:
        return {"errors": [error]}
    if relation == "list_memberships":
        chunk, meta = _numeric_paged(p, world.membership_ids(uid), (relation, uid), size)
    else:
        ids = world.owned_list_ids(uid) if relation == "owned_lists" else world.followed_list_ids(uid)
        chunk, meta = _paged(p, ids, (relation, uid), size, "pagination_token")
    recs = [r for r in (world.list_record(i) for i in chunk) if r is not None]
    return _lists_answer(world, p, recs, meta)


def counts(world: World, p: Params, archive: bool) -> dict[str, Any]:
    """Counts of search's matches per bucket: one page per 31 days at most, the newest first."""
    query = p.get("query")
    if query is None:
        raise v2_invalid("The `query` query parameter can not be empty", {"query": []})
    limit = 1024 if archive else 512
    if len(query) > limit:
        raise v2_invalid(f"The `query` query parameter value is longer than {limit} characters", {"query": [query[:40]]})
    granularity = p.get("granularity", "hour")
    if granularity not in tweet_counts.GRANULARITY_MS:
        raise v2_invalid(f"The `granularity` query parameter value [{granularity}] is not one of [day,hour,minute]",
                         {"granularity": [granularity]})
    if p.get("next_token") and p.get("pagination_token"):
        raise v2_invalid("Only one of `next_token` and `pagination_token` may be given", {"next_token": [], "pagination_token": []})
    token_param = "pagination_token" if p.get("pagination_token") else "next_token"
    now = tweet_counts.ms(world.now)
    asked_start, asked_end = tweet_counts.parse_time(p, "start_time"), tweet_counts.parse_time(p, "end_time")
    start, end = tweet_counts.window(now, archive, asked_start, asked_end)
    earliest = now - tweet_counts.RECENT_DAYS * tweet_counts.DAY_MS
    if not archive and start < earliest:
        raise v2_invalid(f"Invalid 'start_time':'{p.get('start_time')}'. 'start_time' must be on or after "
                         f"{tweet_counts.iso(earliest)}", {"start_time": [p.get("start_time") or ""]})
    if end > now:
        raise v2_invalid(f"Invalid 'end_time':'{p.get('end_time')}'. 'end_time' must be on or before "
                         f"{tweet_counts.iso(now)}", {"end_time": [p.get("end_time") or ""]})
    if start >= end:
        raise v2_invalid("Invalid 'start_time': it must be before 'end_time'", {"start_time": [p.get("start_time") or ""]})
    try:
        ids = world.search(query, archive=archive)
    except ValueError as exc:
        raise v2_invalid(f"There were errors processing your request: {exc}", {"query": [query]}) from None
    ids = tweet_counts.in_period(_time_filter(world, ids, _only_ids(p)), start, end)
    periods = tweet_counts.pages(start, end)
    salt = ("counts", archive, query, granularity, start, end, p.get("since_id"), p.get("until_id"))
    k = _offset(p, token_param, salt)
    if k >= len(periods):
        raise v2_invalid(f"The `{token_param}` query parameter value is not valid", {token_param: [p.get(token_param) or ""]})
    s, e = periods[k]
    data = tweet_counts.buckets(tweet_counts.in_period(ids, s, e), s, e, granularity)
    total = sum(b["tweet_count"] for b in data)
    meta: dict[str, Any] = {"total_tweet_count": total}
    if k + 1 < len(periods):
        meta["next_token"] = paging.encode_token(k + 1, salt)
    return {"data": data, "meta": meta} if ids else {"meta": meta}  # no data only when nothing matched at all


def _only_ids(p: Params) -> Params:
    """The request's since_id/until_id alone (counts take start_time/end_time as their window)."""
    return Params({k: v for k, v in p.values.items() if k in ("since_id", "until_id")}, p.version)


#: (regex on the path after /2/, endpoint key for limits, handler(world, params, *groups))
ROUTES: list[tuple[re.Pattern[str], str, Any]] = [
    (re.compile(r"^tweets/([^/]+)/quote_tweets$"), "/2/tweets/:id/quote_tweets", quote_tweets),
    (re.compile(r"^tweets/([^/]+)/retweeted_by$"), "/2/tweets/:id/retweeted_by", retweeted_by),
    (re.compile(r"^tweets/([^/]+)/liking_users$"), "/2/tweets/:id/liking_users", liking_users),
    (re.compile(r"^users/([^/]+)/liked_tweets$"), "/2/users/:id/liked_tweets", liked_tweets),
    (re.compile(r"^users/([^/]+)/mentions$"), "/2/users/:id/mentions", mentions),
    (re.compile(r"^tweets/counts/recent$"), "/2/tweets/counts/recent", lambda w, p: counts(w, p, False)),
    (re.compile(r"^tweets/counts/all$"), "/2/tweets/counts/all", lambda w, p: counts(w, p, True)),
    (re.compile(r"^lists/([^/]+)$"), "/2/lists/:id", list_lookup),
    (re.compile(r"^lists/([^/]+)/members$"), "/2/lists/:id/members", lambda w, p, i: list_users(w, p, i, "members")),
    (re.compile(r"^lists/([^/]+)/followers$"), "/2/lists/:id/followers", lambda w, p, i: list_users(w, p, i, "followers")),
    (re.compile(r"^lists/([^/]+)/tweets$"), "/2/lists/:id/tweets", list_tweets),
    (re.compile(r"^users/([^/]+)/list_memberships$"), "/2/users/:id/list_memberships",
     lambda w, p, i: user_lists(w, p, i, "list_memberships")),
    (re.compile(r"^users/([^/]+)/owned_lists$"), "/2/users/:id/owned_lists", lambda w, p, i: user_lists(w, p, i, "owned_lists")),
    (re.compile(r"^users/([^/]+)/followed_lists$"), "/2/users/:id/followed_lists", lambda w, p, i: user_lists(w, p, i, "followed_lists")),
]
