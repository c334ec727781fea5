"""Quota shared by every process through Redis: the same rules as
:class:`tweetform.quota.book.QuotaBook`, each step one Lua script (``lua/quota_*.lua``), so several
processes on several hosts using the same credentials together never exceed any
credential's limit.

Per lane × endpoint, a HASH (``keys.quota``) holds ``limit``, ``reset``,
``srem`` (the lowest remaining the API reported this window), ``blocked`` (a
per-second 429) and ``next`` (per-second pacing); a ZSET beside it holds the
reservations in flight, each expiring after ``DOWNLOAD_TIMEOUT`` plus a margin so
a killed worker's reservations do not hold quota forever. Only credential
aliases appear in the keys. Every script reads the time from Redis (``TIME``),
so hosts whose clocks disagree still share one quota.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Mapping

from tweetform.api.endpoints import XRPC_QUOTA, Endpoint
from tweetform.quota.book import Reservation, min_interval, pace_slices, rate_headers
from tweetform.quota.pool import CredentialPool, Lane
from tweetform.state.redis import keys, scripts

logger = logging.getLogger(__name__)


class RedisQuotaBook:
    """The shared quota book (same interface as the in-process one)."""

    def __init__(self, pool: CredentialPool, server: Any, *, margin: float = 1.0, hold: float = 90.0,
                 bluesky_rate: int = 3000, outbox: Any = None) -> None:
        self.pool = pool
        self.server = server
        self.outbox = outbox  # the crawler's (outbox.py): an answer rides the worker's next round trip
        self.bluesky_rate = bluesky_rate
        self.margin = margin
        self.hold = hold  # seconds a reservation counts as in flight at most
        self._reserve = scripts.load(server, "quota_reserve")
        self._available = scripts.load(server, "quota_available")
        self._ready_at = scripts.load(server, "quota_ready_at")
        self._answered = scripts.load(server, "quota_answered")
        self._release = scripts.load(server, "quota_release")

    def _keys(self, lane: Lane, endpoint: str) -> list[str]:
        h = keys.quota(lane.name, endpoint)
        return [h, h + ":inflight"]

    def _all_keys(self, lanes: list[Lane], endpoint: str) -> list[str]:
        return [k for lane in lanes for k in self._keys(lane, endpoint)]

    def lane_keys(self, lanes: list[Lane], endpoint: str) -> list[str]:
        """The (hash, in-flight) keys of these lanes, in order (the queue's pop script reserves on them)."""
        return self._all_keys(lanes, endpoint)

    def has_lanes(self, endpoint: Endpoint) -> bool:
        # held lanes count: their requests wait for them (or for others), they do not fail
        return bool(self.pool.lanes(endpoint, include_held=True))

    def reserve(self, endpoint: Endpoint) -> Reservation | None:
        lanes = self.pool.lanes(endpoint)
        if not lanes:
            return None
        rid = uuid.uuid4().hex
        interval = min_interval(endpoint.key)
        chosen = int(self._reserve(keys=self._all_keys(lanes, endpoint.bucket), args=[self.margin, interval, self.hold, rid]))
        if not chosen:
            return None
        return Reservation(lanes[chosen - 1], endpoint.bucket, rid)

    def available_now(self, endpoint: Endpoint) -> bool:
        lanes = self.pool.lanes(endpoint)
        return bool(lanes) and bool(int(self._available(keys=self._all_keys(lanes, endpoint.bucket), args=[self.margin])))

    def ready_at(self, endpoint: Endpoint) -> float | None:
        lanes = self.pool.lanes(endpoint)
        if not lanes:
            return None
        value, redis_now = (float(v) for v in self._ready_at(keys=self._all_keys(lanes, endpoint.bucket), args=[self.margin]))
        # Redis's time, as this host's clock reads it (so its timers wake it in time even if its clock is off)
        return None if value < 0 else value - redis_now + time.time()

    def answered(self, reservation: Reservation, status: int, headers: Mapping[str, str]) -> None:
        values = ["" if v is None else v for v in rate_headers(headers)]
        keys = self._keys(reservation.lane, reservation.endpoint)
        if values[0] == "" and reservation.endpoint == XRPC_QUOTA and status != 429:  # TWEETFORM_BLUESKY_RATE
            # counted in the script, in the window of Redis's clock (shared by every worker on this lane)
            keys.append(keys[0] + ":paced")
            values += list(pace_slices(self.bluesky_rate))  # per slice, slice seconds
        if self.outbox is None or status == 429:  # a refusal blocks the lane for every worker: at once
            self._answered(keys=keys, args=[reservation.rid, status, *values])
        else:  # nothing reads its answer: first in the worker's next round trip (before its next pop, 0.2 s at most)
            self.outbox.send(self._answered, keys, [reservation.rid, status, *values], _answer_lost)

    def cancel(self, reservation: Reservation) -> None:
        self._release(keys=self._keys(reservation.lane, reservation.endpoint), args=[reservation.rid, "0"])

    def failed(self, reservation: Reservation) -> None:
        self._release(keys=self._keys(reservation.lane, reservation.endpoint), args=[reservation.rid, "1"])


def _answer_lost(exc: BaseException) -> None:
    logger.warning("could not update shared quota (Redis away)")  # the reservation expires by itself (hold)
