"""Ground truth for the Bluesky collections, from the world's records (never from rendered pages).

* :func:`thread_truth`: every reply under a post, at any level, depth first (``/_sandbox/truth/bsky/thread``).
* :func:`cascade_truth`: ``scrapy crawl cascade -a api=bluesky`` breadth first (``/_sandbox/truth/bsky/cascade``).
"""

from __future__ import annotations

from typing import Any

from ..world import Tweet
from . import ids
from .views import Views


def thread_truth(v: Views, t: Tweet) -> list[Tweet]:
    """The visible replies under ``t``, depth first in reply order (a reply whose author is gone hides
    its own replies too, as the AppView's thread does)."""
    out: list[Tweet] = []
    stack = [t]
    while stack:
        node = stack.pop()
        if node is not t:
            out.append(node)
        kids = [k for k in map(v.visible_tweet, v.world.reply_ids(node.id)) if k is not None]
        stack.extend(reversed(kids))
    return out


def cascade_truth(v: Views, seeds: list[str], depth: int, include: list[str], max_tweets: int | None) -> dict[str, Any]:
    """The posts expanded in breadth-first order (at most ``max_tweets``): a seed's and a non-reply's
    replies are every reply under it; then its quotes, reposters and likers. Every post and user
    collected with its depth (seeds 0), the edges ``[reacting post or DID, parent post, kind]`` between
    collected nodes (``reply`` and ``quote`` from each collected post's own references, ``repost`` and
    ``like`` from the lists), and the posts whose parent was not collected."""
    uri = v.post_uri
    expanded: list[str] = []
    done: set[int] = set()
    posts: dict[int, int] = {}
    users: dict[str, int] = {}
    engaged: set[tuple[str, str, str]] = set()
    level: list[tuple[Tweet, bool]] = []
    for seed in dict.fromkeys(seeds):
        t = v.tweet_of_uri(seed)
        if t is not None:
            posts.setdefault(t.id, 0)
            level.append((t, True))
    for depth_now in range(1, depth + 1):
        following: list[tuple[Tweet, bool]] = []
        for t, thread in level:
            if t.id in done or (max_tweets is not None and len(expanded) >= max_tweets):
                continue
            done.add(t.id)
            expanded.append(uri(t))
            if "replies" in include and thread:
                for reply in thread_truth(v, t):
                    posts.setdefault(reply.id, depth_now)
                    following.append((reply, False))
            if "quotes" in include:
                for quote in map(v.visible_tweet, v.world.quote_ids(t.id)):
                    if quote is not None:
                        posts.setdefault(quote.id, depth_now)
                        following.append((quote, not quote.in_reply_to_status_id))
            for name, kind, listed in (("retweets", "repost", v.world.retweeter_ids), ("likes", "like", v.world.liker_ids)):
                if name in include:
                    for uid in listed(t.id):
                        if v.active(uid) is not None:
                            users.setdefault(ids.did_of(uid), depth_now)
                            engaged.add((ids.did_of(uid), uri(t), kind))
        level = following
    edges: set[tuple[str, str, str]] = set()
    missing: set[str] = set()
    for tid in posts:
        t = v.world.tweet(tid)
        for parent, kind in ((t.in_reply_to_status_id, "reply"), (t.quoted_status_id, "quote")):
            if parent:
                if parent in posts:
                    edges.add((uri(t), uri(v.world.tweet(parent)), kind))
                else:
                    missing.add(uri(t))
    return {
        "expanded": expanded,
        "posts": {uri(v.world.tweet(t)): d for t, d in posts.items()},
        "users": users,
        "edges": sorted([list(e) for e in edges | engaged]),
        "parent_missing": sorted(missing),
    }
