"""Ground truth for graphs built from tweets, computed from the world's records (never from rendered pages).

* :func:`cascade_truth`: ``scrapy crawl cascade`` breadth first (``/_sandbox/truth/cascade``).
* :func:`network_truth`: the user network of a search's tweets (``/_sandbox/truth/network``),
  by the rules of ``scrapy export graph`` on a tweet bucket: an author → the author of what
  it retweets or quotes (when that tweet still exists), → the user it replies to, → each
  user it mentions (not for retweets, whose words are the original's).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

KINDS = ("retweet", "quote", "reply", "mention")


def _time(dt: datetime) -> str:
    dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def network_truth(world: Any, query: str, archive: bool, kinds: tuple[str, ...] = KINDS) -> dict[str, Any]:
    edges: dict[tuple[int, int, str], list[tuple[str, int]]] = {}
    for tid in world.search(query, archive=archive):
        tweet = world.tweet(tid)
        if tweet is None:
            continue
        found: set[tuple[str, int]] = set()
        for kind, ref in (("retweet", tweet.retweeted_status_id), ("quote", tweet.quoted_status_id)):
            original = world.tweet(ref) if ref else None
            if original is not None and not original.deleted:
                found.add((kind, original.author_id))
        if tweet.in_reply_to_user_id:
            found.add(("reply", tweet.in_reply_to_user_id))
        if not tweet.retweeted_status_id:
            found |= {("mention", uid) for uid in tweet.mentions}
        for kind, target in found:
            if kind in kinds:
                edges.setdefault((tweet.author_id, target, kind), []).append((_time(tweet.created_at), tid))
    return {"edges": [
        {"source": str(s), "target": str(t), "kind": k, "weight": len(v), "first_time": min(v)[0], "last_time": max(v)[0],
         "tweet_ids": sorted(tid for _, tid in v)}
        for (s, t, k), v in sorted(edges.items())
    ]}


def cascade_truth(world: Any, seeds: list[int], depth: int, include: list[str], max_tweets: int | None,
                  archive: bool) -> dict[str, Any]:
    """The cascade of ``scrapy crawl cascade`` (``/_sandbox/truth/cascade``), breadth first from the
    world's engagement index and search: the posts expanded in order (at most ``max_tweets``), every
    post and user collected with its depth (the level it was first found at; seeds 0), and the edges
    ``[reacting post or user, parent post, kind]`` between collected nodes (a post whose parent was not
    collected is listed in ``parent_missing``). A conversation is searched once per job: a seed's, a
    found quote's own, or the one a quote that also replies belongs to; a reply found in a search is
    of the thread already searched."""
    expanded: list[int] = []
    done: set[int] = set()
    posts: dict[int, int] = {}
    users: dict[int, int] = {}
    edges: set[tuple[int, int, str]] = set()
    level: list[tuple[int, int | None]] = []
    for sid in dict.fromkeys(seeds):
        tweet = world.tweet(sid)
        if tweet is not None and not tweet.deleted:
            posts.setdefault(sid, 0)
            level.append((sid, tweet.conversation_id))
            for parent, kind in ((tweet.in_reply_to_status_id, "reply"), (tweet.quoted_status_id, "quote")):
                if parent:
                    edges.add((sid, parent, kind))
    searched: dict[int, None] = {}  # the conversations searched, in order
    for depth_now in range(1, depth + 1):
        following: list[tuple[int, int | None]] = []
        for tid, conversation in level:
            if tid in done or (max_tweets is not None and len(expanded) >= max_tweets):
                continue
            done.add(tid)
            expanded.append(tid)
            if "replies" in include and conversation is not None and conversation not in searched:
                searched[conversation] = None
                for rid in world.search(f"conversation_id:{conversation}", archive=archive):
                    reply = world.tweet(rid)
                    posts.setdefault(rid, depth_now)
                    edges.add((rid, reply.in_reply_to_status_id, "reply"))
                    if reply.quoted_status_id:  # a reply that also quotes
                        edges.add((rid, reply.quoted_status_id, "quote"))
                    following.append((rid, rid if reply.conversation_id == rid else None))
            if "quotes" in include:
                for qid in world.quote_ids(tid):
                    quote = world.tweet(qid)
                    posts.setdefault(qid, depth_now)
                    edges.add((qid, quote.quoted_status_id, "quote"))
                    if quote.in_reply_to_status_id:
                        edges.add((qid, quote.in_reply_to_status_id, "reply"))
                    following.append((qid, quote.conversation_id))  # its own, or another thread's if it replies
            for name, ids in (("retweets", world.retweeter_ids), ("likes", world.liker_ids)):
                if name in include:
                    for uid in ids(tid):
                        users.setdefault(uid, depth_now)
                        edges.add((uid, tid, name[:-1]))
        level = following
    # include=retweet_times: each collected retweet edge's time, its retweet post's (the retweeter's timeline)
    retweeted_at = {f"{s} {t}": _retweet_time(world, s, t) for s, t, k in edges if k == "retweet" and t in posts
                    } if "retweet_times" in include else {}
    # an edge to a post not collected (beyond depth, deleted, never expanded) is not drawn: its post is marked
    return {
        "retweet_times": retweeted_at,
        "expanded": [str(t) for t in expanded],
        "searched": [str(c) for c in searched],
        "posts": {str(t): d for t, d in posts.items()},
        "users": {str(u): d for u, d in users.items()},
        "edges": sorted([str(s), str(t), k] for s, t, k in edges if t in posts),
        "parent_missing": sorted({str(s) for s, t, _ in edges if t not in posts}),
    }


def _retweet_time(world: Any, user: int, post: int) -> str:
    """When ``user`` retweeted ``post``: its retweet's created_at, from its timeline ("" if not there)."""
    for tid in world.timeline(user):
        if tid < post:
            break
        tweet = world.tweet(tid)
        if tweet is not None and tweet.retweeted_status_id == post:
            return _time(tweet.created_at)
    return ""
