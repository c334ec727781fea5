"""Exact sets in a few bytes a member: small buckets Redis keeps compact, grown by linear hashing.

One big SET or HASH costs ~50–70 bytes a member (a hashtable entry, a string object each).
Redis stores a small HASH as a *listpack* (while it has at most ``hash-max-listpack-entries``
fields, 512 in Redis 7's defaults, 128 in some configurations) and a small SET of integers as
an *intset* (``set-max-intset-entries``, 512): a member then costs its own bytes and one or two
more. So a set is spread over buckets ``<prefix><i>`` that stay that small (``lua/lhash.lua``):
one bucket is split in two for every ``load`` members added, so the average stays at ``load``
and the fullest (not yet split this round) near ``2 × load``; ``load`` is a quarter of the
server's limit, fixed by the set's first member so every worker uses the same layout. Lookups
are exact: a member is in exactly one bucket, under its own bytes.

Used for the dupe filter's request fingerprints and the written pages (HASH buckets of binary
digests, ~24 and ~14 bytes a member) and the billed-ids dedupe (SET buckets of ids, 4–8 bytes);
the job's claimed users are the same layout with a value per user (``seen.py``). The layout
HASH holds ``n`` (members), ``lvl``, ``split`` and ``load``; :func:`bucket_keys` lists the buckets.
"""

from __future__ import annotations

from typing import Any

import redis

DEFAULT_LIMIT = 128  # when CONFIG GET is refused (managed Redis): the smaller common limit
HASH_LOAD, SET_LOAD = 32, 128  # members per bucket on average, at most (a lookup scans its listpack bucket)


def _limit(server: Any, setting: str) -> int:
    try:
        found = server.config_get(setting)
        return int(next(iter(found.values()))) if found else DEFAULT_LIMIT
    except (redis.ResponseError, ValueError, StopIteration):
        return DEFAULT_LIMIT


def hash_load(server: Any) -> int:
    """Average members per HASH bucket so the fullest stays a listpack on this server."""
    return max(8, min(HASH_LOAD, _limit(server, "hash-max-listpack-entries") // 4))


def set_load(server: Any) -> int:
    """Average members per SET bucket so the fullest stays an intset on this server."""
    return max(8, min(SET_LOAD, _limit(server, "set-max-intset-entries") // 4))


def bucket_prefix(layout: str) -> str:
    """The buckets of a set are ``<layout>:<i>`` (what the scripts are given)."""
    return f"{layout}:"


def bucket_keys(server: Any, layout: str) -> list[str]:
    """Every bucket key of a set (the layout hash itself excepted)."""
    lvl, split = server.hmget(layout, "lvl", "split")
    if lvl is None:
        return []
    return [bucket_prefix(layout) + str(i) for i in range(2 ** int(lvl) + int(split or 0))]


def members(server: Any, layout: str) -> int:
    """Members in a set."""
    return int(server.hget(layout, "n") or 0)
