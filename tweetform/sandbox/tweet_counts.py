"""``/2/tweets/counts/recent`` and ``/all``: search's matches, counted per minute, hour or day.

Counts read the same search (``World.search``) as ``/2/tweets/search/*``, so the counts
of a query over a period add up to the posts search returns for it over that period.
Buckets are aligned to their granularity (the first and last may be partial), zero
buckets included. One answer covers at most 31 days, the newest first: ``next_token``
leads to the days before (each page's buckets in time order). A query that matches nothing
over the whole period has no ``data``, only ``meta.total_tweet_count: 0`` (and is not billed).
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import datetime, timezone
from typing import Any

from .params import Params

GRANULARITY_MS = {"minute": 60_000, "hour": 3_600_000, "day": 86_400_000}
DAY_MS = 86_400_000
PAGE_DAYS = 30  # whole days before the page's last partial day: <= 31 days a page
ARCHIVE_DEFAULT_DAYS = 30  # counts/all without start_time: 30 days from 00:00 UTC
RECENT_DAYS = 7
TWITTER_EPOCH_MS = 1288834974657


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def iso(t_ms: int) -> str:
    dt = datetime.fromtimestamp(t_ms / 1000, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def window(now_ms: int, archive: bool, start_ms: int | None, end_ms: int | None) -> tuple[int, int]:
    """``(start, end)`` in epoch ms of a counts request; by default recent covers the 7 days before now,
    all the 30 days before today's 00:00 UTC and today."""
    end = now_ms if end_ms is None else end_ms
    if start_ms is not None:
        return start_ms, end
    if archive:
        return (now_ms // DAY_MS) * DAY_MS - ARCHIVE_DEFAULT_DAYS * DAY_MS, end
    return now_ms - RECENT_DAYS * DAY_MS, end


def buckets(tweet_ids: list[int], start: int, end: int, granularity: str) -> list[dict[str, Any]]:
    """``[{"start", "end", "tweet_count"}]`` over ``[start, end)``, in time order (ids newest first)."""
    step = GRANULARITY_MS[granularity]
    times = sorted((tid >> 22) + TWITTER_EPOCH_MS for tid in tweet_ids)
    edges = [start]
    nxt = (start // step + 1) * step
    while nxt < end:
        edges.append(nxt)
        nxt += step
    edges.append(end)
    out = []
    lo = bisect_left(times, start)
    for a, b in zip(edges, edges[1:]):
        hi = bisect_left(times, b)
        out.append({"end": iso(b), "start": iso(a), "tweet_count": hi - lo})
        lo = hi
    return out


def pages(start: int, end: int) -> list[tuple[int, int]]:
    """The periods of the answer's pages, newest first: the last partial day and 30 whole days each."""
    out = []
    e = end
    while e > start:
        s = max(start, ((e - 1) // DAY_MS) * DAY_MS - PAGE_DAYS * DAY_MS)
        out.append((s, e))
        e = s
    return out


def in_period(tweet_ids: list[int], start: int, end: int) -> list[int]:
    """The ids created in ``[start, end)`` (a tweet id is its creation time << 22)."""
    lo = (start - TWITTER_EPOCH_MS) << 22
    hi = (end - TWITTER_EPOCH_MS) << 22
    return [t for t in tweet_ids if lo <= t < hi]


def parse_time(p: Params, name: str) -> int | None:
    """An ISO 8601 query parameter as epoch ms (a 400 for a malformed one)."""
    t = p.time(name)
    return None if t is None else ms(t)

