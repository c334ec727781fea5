"""The XRPC methods of the face: ``handler(views, query) -> body``, pure functions of the world.

Lists are cut first and then cleared of accounts and posts the AppView hides, so pages
come back short while more remain; only a missing cursor ends a list.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

from ..world import TWITTER_EPOCH_MS, Tweet
from . import ids
from .views import Views, iso
from .xrpc import Query, check_actor, check_at_uri, invalid, page

FEED_FILTERS = ("posts_with_replies", "posts_no_replies", "posts_with_media", "posts_and_author_threads",
                "posts_with_video")


def _actor_uid(v: Views, actor: str) -> int | None:
    return v.uid_of_actor(actor)


def _profile_error(v: Views, actor: str) -> None:
    """getProfile's and getAuthorFeed's errors for an actor that is not active."""
    uid = _actor_uid(v, actor)
    status = v.status(uid) if uid is not None else None
    if status is None:
        raise invalid("Profile not found")
    if status == "takendown":
        raise invalid("Account has been suspended", "AccountTakedown")
    if status == "deactivated":
        raise invalid("Account is deactivated", "AccountDeactivated")


def get_follows(v: Views, q: Query, direction: str) -> dict[str, Any]:
    actor = q.actor()
    limit = q.int("limit", 50, 1, 100)
    q.choice("sort", "latest", ("latest", "top"))
    uid = _actor_uid(v, actor)
    subject = v.active(uid) if uid is not None else None
    if subject is None:
        raise invalid(f"Actor not found: {actor}")
    raw = v.world.following(uid) if direction == "follows" else v.world.followers(uid)
    chunk, cursor = page(raw, q, limit, ("bsky", direction, uid))
    shown = [u for u in (v.active(i) for i in chunk) if u is not None]
    out: dict[str, Any] = {"subject": v.profile(subject), direction: [v.profile(u) for u in shown]}
    if cursor:
        out["cursor"] = cursor
    return out


def get_author_feed(v: Views, q: Query) -> dict[str, Any]:
    actor = q.actor()
    limit = q.int("limit", 50, 1, 100)
    filter_ = q.choice("filter", "posts_with_replies", FEED_FILTERS)
    include_pins = q.bool("includePins")
    _profile_error(v, actor)
    uid = _actor_uid(v, actor)
    user = v.world.user(uid)
    chunk, cursor = page(v.feed_ids(uid, filter_), q, limit, ("bsky-feed", uid, filter_))
    feed = [item for item in (v.feed_item(t) for t in map(v.world.tweet, chunk) if t is not None) if item]
    if include_pins and q.str("cursor") is None:
        pinned = v.pinned(user)
        if pinned is not None:
            feed.insert(0, {"post": v.post(pinned), "reason": {"$type": "app.bsky.feed.defs#reasonPin"}})
    out: dict[str, Any] = {"feed": feed}
    if cursor:
        out["cursor"] = cursor
    return out


def search_hits(v: Views, q: Query) -> list[int]:
    """Ids of the posts searchPosts finds, newest first (retweets are reposts, not posts)."""
    text = q.required("q")
    since, until = q.datetime("since"), q.datetime("until")
    lang = q.str("lang")
    author = q.str("author")
    mentions = q.str("mentions")
    for name, value in (("author", author), ("mentions", mentions)):
        if value is not None:
            check_actor(value, name)
    author_id = _actor_uid(v, author) if author else None
    mention_id = _actor_uid(v, mentions) if mentions else None
    if (author and author_id is None) or (mentions and mention_id is None):
        return []

    def find() -> list[int]:
        # the corpus is active users' live posts already; reposts are not posts; time and author
        # are in the id ((ms since the Twitter epoch) << 22 | author index): no post is built but for mentions
        query = f"({text}) -is:retweet" + (f" lang:{lang}" if lang else "")
        try:
            found = v.world.search(query, archive=True)
        except ValueError as exc:
            raise invalid(f"Invalid search query: {exc}") from None
        lo = ((int(since.timestamp() * 1000) - TWITTER_EPOCH_MS) << 22) if since else None
        hi = ((int(until.timestamp() * 1000) - TWITTER_EPOCH_MS) << 22) if until else None
        index = v.world.index_of(author_id) if author_id else None
        hits = []
        for tid in found:
            if (lo is not None and tid < lo) or (hi is not None and tid >= hi):
                continue
            if index is not None and tid & 0x3FFFFF != index:
                continue
            if mention_id and mention_id not in v.world.tweet(tid).mentions:
                continue
            hits.append(tid)
        return hits

    return v.memo(("search", text, since, until, lang, author_id, mention_id), find)


def search_posts(v: Views, q: Query) -> dict[str, Any]:
    limit = q.int("limit", 25, 1, 100)
    sort = q.choice("sort", "latest", ("top", "latest"))
    hits = search_hits(v, q)
    if sort == "top":  # most liked first, newest among equals
        hits = sorted(hits, key=lambda tid: -v.world.tweet(tid).favorite_count)
    salt = ("bsky-search", sort, *(q.str(n) for n in ("q", "since", "until", "lang", "author", "mentions")))
    chunk, cursor = page(hits, q, limit, salt)
    out: dict[str, Any] = {"posts": [v.post(v.world.tweet(t)) for t in chunk], "hitsTotal": len(hits)}
    if cursor:
        out["cursor"] = cursor
    return out


def get_profile(v: Views, q: Query) -> dict[str, Any]:
    actor = q.actor()
    _profile_error(v, actor)
    return v.profile_detailed(v.world.user(_actor_uid(v, actor)))


def get_profiles(v: Views, q: Query) -> dict[str, Any]:
    actors = q.array("actors", 25)
    for n, actor in enumerate(actors):
        check_actor(actor, f"actors/{n}")
    shown = []
    for actor in actors:
        uid = _actor_uid(v, actor)
        u = v.active(uid) if uid is not None else None
        if u is not None:
            shown.append(v.profile_detailed(u))
    return {"profiles": shown}


def get_posts(v: Views, q: Query) -> dict[str, Any]:
    uris = q.array("uris", 25)
    for n, uri in enumerate(uris):
        check_at_uri(uri, f"uris/{n}")
    posts = [v.post(t) for t in (v.tweet_of_uri(u) for u in uris) if t is not None]
    return {"posts": posts}


def _thread_post(v: Views, t: Tweet) -> dict[str, Any]:
    return {"$type": "app.bsky.feed.defs#threadViewPost", "post": v.post(t)}


def get_post_thread(v: Views, q: Query) -> dict[str, Any]:
    uri = q.at_uri()
    depth = q.int("depth", 6, 0, 1000)
    height = q.int("parentHeight", 80, 0, 1000)
    t = v.tweet_of_uri(uri)
    if t is None:
        raise invalid(f"Post not found: {uri}", "NotFound")
    node = _thread_post(v, t)

    def with_replies(n: dict[str, Any], tweet: Tweet, level: int) -> dict[str, Any]:
        if level < depth:
            kids = [v.visible_tweet(r) for r in v.world.reply_ids(tweet.id)]
            n["replies"] = [with_replies(_thread_post(v, k), k, level + 1) for k in kids if k is not None]
        else:
            n["replies"] = []
        return n

    with_replies(node, t, 0)
    current, child = t, node
    for _ in range(height):
        if not current.in_reply_to_status_id:
            break
        parent = v.visible_tweet(current.in_reply_to_status_id)
        if parent is None:
            ref = v.world.tweet(current.in_reply_to_status_id)
            child["parent"] = {"$type": "app.bsky.feed.defs#notFoundPost",
                               "uri": v.post_uri(ref) if ref else "", "notFound": True}
            break
        child["parent"] = _thread_post(v, parent)
        current, child = parent, child["parent"]
    return {"thread": node}


def resolve_handle(v: Views, q: Query) -> dict[str, Any]:
    handle = q.required("handle")
    if not ids.is_handle(handle):
        raise invalid("handle must be a valid handle")
    uid = v.uid_of_handle(handle)
    if uid is None or v.status(uid) is None:
        raise invalid("Unable to resolve handle")
    return {"did": ids.did_of(uid)}


def _reactions(v: Views, q: Query, listed: Callable[[int], list]) -> tuple[list, str | None]:
    """A page of who reacted to a post (the world's engagement lists, newest first); a post
    that is not there has none, as the AppView answers."""
    uri = q.at_uri()
    limit = q.int("limit", 50, 1, 100)
    q.str("cid")
    t = v.tweet_of_uri(uri)
    found = listed(t.id) if t is not None else []
    return page(found, q, limit, ("bsky-reactions", listed.__name__, uri))


def _head(q: Query, out: dict[str, Any], cursor: str | None) -> dict[str, Any]:
    head: dict[str, Any] = {"uri": q.required("uri")}
    if q.str("cid"):
        head["cid"] = q.str("cid")
    return {**head, **out, **({"cursor": cursor} if cursor else {})}


def get_quotes(v: Views, q: Query) -> dict[str, Any]:
    chunk, cursor = _reactions(v, q, v.world.quote_ids)
    return _head(q, {"posts": [v.post(t) for t in map(v.visible_tweet, chunk) if t is not None]}, cursor)


def get_reposted_by(v: Views, q: Query) -> dict[str, Any]:
    chunk, cursor = _reactions(v, q, v.world.retweeter_ids)
    return _head(q, {"repostedBy": [v.profile(u) for u in map(v.active, chunk) if u is not None]}, cursor)


def get_likes(v: Views, q: Query) -> dict[str, Any]:
    chunk, cursor = _reactions(v, q, v.world.likes_of)
    likes = []
    for ms, uid in chunk:
        u = v.active(uid)
        if u is not None:
            when = iso(datetime.fromtimestamp(ms / 1000, timezone.utc))
            likes.append({"actor": v.profile(u), "createdAt": when, "indexedAt": when})
    return _head(q, {"likes": likes}, cursor)


#: NSID -> (HTTP method, handler); createSession/refreshSession are the face's own (sessions.py)
QUERIES: dict[str, Callable[[Views, Query], dict[str, Any]]] = {
    "app.bsky.graph.getFollows": lambda v, q: get_follows(v, q, "follows"),
    "app.bsky.graph.getFollowers": lambda v, q: get_follows(v, q, "followers"),
    "app.bsky.feed.getAuthorFeed": get_author_feed,
    "app.bsky.feed.searchPosts": search_posts,
    "app.bsky.actor.getProfile": get_profile,
    "app.bsky.actor.getProfiles": get_profiles,
    "app.bsky.feed.getPosts": get_posts,
    "app.bsky.feed.getPostThread": get_post_thread,
    "app.bsky.feed.getQuotes": get_quotes,
    "app.bsky.feed.getRepostedBy": get_reposted_by,
    "app.bsky.feed.getLikes": get_likes,
    "com.atproto.identity.resolveHandle": resolve_handle,
}
#: methods that need an account session (a Bearer access token)
NEEDS_SESSION = frozenset({"app.bsky.feed.searchPosts"})
