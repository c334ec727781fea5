"""Where quota is decided: per lane × endpoint, may a request go now, and on which lane?

State per (lane, endpoint), learnt from the ``x-rate-limit-*`` headers (Bluesky's
``ratelimit-*``; its endpoints share one pool per lane, :attr:`Endpoint.bucket`):

* ``limit`` and ``reset`` of the current window;
* ``server_remaining``: the lowest ``remaining`` the API reported in this
  window (its count only grows, so the lowest is the most recent truth);
* ``in_flight``: requests sent and not answered yet.

A request may go when ``server_remaining - in_flight > 0``: every request the API
may not have counted yet is assumed counted, so the API's limit is never
exceeded and no 429 is provoked. Before the first answer for a key nothing is
known, so only one probe request goes. When a window's reset has passed (plus
a safety margin for clock skew) the quota is back to ``limit``.

Lanes whose window resets soonest are used first: their quota expires soonest.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, Mapping

from tweetform.api.endpoints import XRPC_QUOTA, Endpoint
from tweetform.api.limits import PER_SECOND
from tweetform.quota.pool import CredentialPool, Lane

logger = logging.getLogger(__name__)
PER_SECOND_INTERVAL = 1.05  # endpoints limited to one request per second (full-archive search)


def min_interval(endpoint_key: str) -> float:
    """Seconds between two requests of one lane to an endpoint: the per-second limit of the ones
    :data:`tweetform.api.limits.PER_SECOND` lists (in Python here and in the Redis scripts' arguments)."""
    return PER_SECOND_INTERVAL if endpoint_key in PER_SECOND else 0.0


@dataclass
class KeyQuota:
    limit: int | None = None  # None until the first answer
    reset: float = 0.0  # epoch seconds; 0 = not known in this window
    server_remaining: int = 0
    in_flight: int = 0
    blocked_until: float = 0.0  # a per-second 429
    next_allowed: float = 0.0  # per-second pacing

    def available(self, now: float, margin: float) -> int:
        if now < self.blocked_until or now < self.next_allowed:
            return 0
        if self.limit is None:
            return 1 - self.in_flight  # one probe at a time until the limit is known
        if self.reset and now >= self.reset + margin:
            return self.limit - self.in_flight  # the window has rolled over
        if not self.reset and self.server_remaining - self.in_flight <= 0:
            # no answer yet in this window and the requests sent failed without one
            # (API or proxy outage): probe, one at a time, rather than wait forever
            return 1 - self.in_flight
        return self.server_remaining - self.in_flight

    def ready_at(self, now: float, margin: float) -> float | None:
        """When quota may be back (None: when an answer in flight arrives)."""
        times = [t for t in (self.blocked_until, self.next_allowed) if t > now]
        if self.limit is not None and self.reset and self.server_remaining - self.in_flight <= 0:
            times.append(self.reset + margin)
        return max(times) if times else None


@dataclass(frozen=True)
class Reservation:
    lane: Lane
    endpoint: str
    rid: str = ""  # the shared (Redis) book's reservation id


PACE_WINDOW = 300  # seconds: TWEETFORM_BLUESKY_RATE is requests per 5 minutes per IP
PACE_SLICES = (1, 2, 3, 4, 5, 6, 10)  # the window cut in k slices of whole seconds (k divides 300)


def pace_slices(rate: int) -> tuple[int, int]:
    """``(requests per slice, slice seconds)`` that keep ``rate`` requests in *every* 5-minute interval.

    A host that publishes no limit counts in windows of its own, from some first request: fixed
    5-minute windows on the epoch could send ``rate`` at the end of one and ``rate`` at the start of
    the next, twice the limit in one of the host's windows. A 5-minute interval touches at most k + 1
    slices of 300/k seconds, so ``rate // (k + 1)`` a slice never exceeds ``rate`` in any; k is the one
    that sends most (90 % of 3,000 with 30 s slices). The setting is at least 2: fixed slices cannot
    keep every 5-minute interval to 1."""
    k = max(PACE_SLICES, key=lambda n: (n * (rate // (n + 1)), -n))
    return max(1, rate // (k + 1)), PACE_WINDOW // k


def paced_headers(rate: int, now: float, served: int) -> dict[str, str]:
    """Bluesky answers without ``ratelimit-*`` headers: the ones ``rate`` requests per 5 minutes, paced
    in slices (:func:`pace_slices`, on the epoch), would give after ``served`` answers in this slice."""
    per, span = pace_slices(rate)
    reset = (int(now) // span + 1) * span
    return {"ratelimit-limit": str(per), "ratelimit-remaining": str(max(0, per - served)), "ratelimit-reset": str(reset)}


class QuotaBook:
    """In-process quota state (the Redis-backed book shares the same interface)."""

    def __init__(self, pool: CredentialPool, *, margin: float = 1.0, clock: Callable[[], float] = time.time,
                 bluesky_rate: int = 3000) -> None:
        self.pool = pool
        self.margin = margin
        self.clock = clock
        self.bluesky_rate = bluesky_rate
        self.keys: dict[tuple[Lane, str], KeyQuota] = {}
        self._paced: dict[tuple[Lane, int], int] = {}  # (lane, window) -> answers without headers

    def _key(self, lane: Lane, endpoint: str) -> KeyQuota:
        key = self.keys.get((lane, endpoint))
        if key is None:
            key = self.keys[(lane, endpoint)] = KeyQuota()
        return key

    def reserve(self, endpoint: Endpoint) -> Reservation | None:
        """Take one request of quota on the best lane, or None if none has any now."""
        now = self.clock()
        best: tuple[float, int, Lane] | None = None
        for order, lane in enumerate(self.pool.lanes(endpoint)):
            quota = self._key(lane, endpoint.bucket)
            if quota.available(now, self.margin) <= 0:
                continue
            rank = (quota.reset if quota.reset and now < quota.reset + self.margin else float("inf"), order, lane)
            if best is None or rank[:2] < best[:2]:
                best = rank
        if best is None:
            return None
        lane = best[2]
        quota = self._key(lane, endpoint.bucket)
        if quota.limit is not None and quota.reset and now >= quota.reset + self.margin:
            quota.server_remaining, quota.reset = quota.limit, 0.0  # a fresh window
        quota.in_flight += 1
        if min_interval(endpoint.key):
            quota.next_allowed = now + min_interval(endpoint.key)
        return Reservation(lane, endpoint.bucket)

    def available_now(self, endpoint: Endpoint) -> bool:
        now = self.clock()
        return any(self._key(lane, endpoint.bucket).available(now, self.margin) > 0 for lane in self.pool.lanes(endpoint))

    def ready_at(self, endpoint: Endpoint) -> float | None:
        """Earliest time a lane may have quota for this endpoint again."""
        now = self.clock()
        times = []
        for lane in self.pool.lanes(endpoint):
            t = self._key(lane, endpoint.bucket).ready_at(now, self.margin)
            if t is None:
                return None
            times.append(t)
        return min(times) if times else None

    def has_lanes(self, endpoint: Endpoint) -> bool:
        # held lanes count: their requests wait for them (or for others), they do not fail
        return bool(self.pool.lanes(endpoint, include_held=True))

    def answered(self, reservation: Reservation, status: int, headers: Mapping[str, str]) -> None:
        """Release a reservation and learn from the answer's rate-limit headers."""
        quota = self._key(reservation.lane, reservation.endpoint)
        quota.in_flight = max(0, quota.in_flight - 1)
        limit, remaining, reset = rate_headers(headers)
        if limit is None and reservation.endpoint == XRPC_QUOTA and status != 429:  # pace by TWEETFORM_BLUESKY_RATE
            now = self.clock()
            window = (reservation.lane, int(now) // pace_slices(self.bluesky_rate)[1])
            if window not in self._paced:  # a new slice: the lane's past ones are done with
                self._paced = {k: v for k, v in self._paced.items() if k[0] != reservation.lane}
            self._paced[window] = self._paced.get(window, 0) + 1
            limit, remaining, reset = rate_headers(paced_headers(self.bluesky_rate, now, self._paced[window]))
        if limit is None or remaining is None or reset is None:
            if status == 429:
                quota.blocked_until = self.clock() + 60.0  # no headers: back off a minute
            return
        if reset > quota.reset or quota.limit is None:
            quota.limit, quota.reset, quota.server_remaining = limit, float(reset), remaining  # a new window
        else:
            quota.server_remaining = min(quota.server_remaining, remaining)
        if status == 429:
            if remaining > 0:  # a per-second limit, not the window's
                quota.blocked_until = self.clock() + 1.0
            else:
                quota.server_remaining = 0

    def cancel(self, reservation: Reservation) -> None:
        """A reservation that was never sent."""
        quota = self._key(reservation.lane, reservation.endpoint)
        quota.in_flight = max(0, quota.in_flight - 1)

    def failed(self, reservation: Reservation) -> None:
        """No answer (connection error): assume the API counted the request."""
        quota = self._key(reservation.lane, reservation.endpoint)
        quota.in_flight = max(0, quota.in_flight - 1)
        if quota.limit is not None:
            quota.server_remaining = max(0, quota.server_remaining - 1)

    def snapshot(self) -> list[dict]:
        now = self.clock()
        return [
            {"alias": lane.alias, "kind": lane.kind, "endpoint": ep, "limit": q.limit,
             "remaining": max(0, q.available(now, self.margin)), "reset": q.reset, "in_flight": q.in_flight}
            for (lane, ep), q in sorted(self.keys.items(), key=lambda kv: (kv[0][0].name, kv[0][1]))
        ]


def rate_headers(headers: Mapping[str, str]) -> tuple[int | None, int | None, int | None]:
    """``(limit, remaining, reset)`` of an answer: X's ``x-rate-limit-*`` or Bluesky's ``ratelimit-*``."""
    for prefix in ("x-rate-limit-", "ratelimit-"):
        values = tuple(_int(headers.get(prefix + h)) for h in ("limit", "remaining", "reset"))
        if values[0] is not None:
            return values  # type: ignore[return-value]
    return None, None, None


def _int(value: str | bytes | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.decode() if isinstance(value, bytes) else value)
    except ValueError:
        return None
