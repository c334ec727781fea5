"""Ground truth for graphs built from tweets, computed from the world's records (never from rendered pages).

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
