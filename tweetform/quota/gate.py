"""The scheduler's side of quota: which endpoints may send now, and waking up in time.

Both request queues — Scrapy's in one process
(:class:`tweetform.quota.queue.QuotaAwarePriorityQueue`) and the shared Redis
queue (:class:`tweetform.distributed.scheduler.RedisScheduler`) — hold requests
per endpoint and ask this gate before taking one. When no endpoint with
pending requests has quota, the gate says so in one log line ("waiting 8 m 12 s
for /friends/ids quota …, resumes 14:05:12 UTC") and wakes the engine at the
earliest reset, since Scrapy only polls its scheduler every few seconds.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from scrapy.crawler import Crawler
from scrapy.utils.asyncio import call_later

from tweetform.api.endpoints import ENDPOINTS
from tweetform.quota import runtime
from tweetform.quota.book import Reservation

logger = logging.getLogger(__name__)
META_LANE = "tweetform_lane"  # (alias, kind) reserved for this attempt
NO_ENDPOINT = "-"  # requests that are not API calls


def human(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} m"
    if seconds >= 60:
        return f"{seconds // 60} m {seconds % 60} s"
    return f"{seconds} s"


class QuotaGate:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.book = runtime.book(crawler)
        self._wake: Any = None
        self._wake_at = 0.0
        self._waiting_since: dict[str, float] = {}

    def reserve(self, name: str) -> Reservation | None | bool:
        """A reservation; None if the endpoint must wait; True if no quota applies
        (not an API request, or no credential left: signing then stops the crawl)."""
        if name == NO_ENDPOINT:
            return True
        endpoint = ENDPOINTS[name]
        if not self.book.has_lanes(endpoint):
            return True
        reservation = self.book.reserve(endpoint)
        if reservation is None:
            self._note_waiting(name)
        return reservation

    def may_send(self, name: str) -> bool:
        """Without reserving: could a request for this endpoint go now?"""
        if name == NO_ENDPOINT or not self.book.has_lanes(ENDPOINTS[name]):
            return True
        if self.book.available_now(ENDPOINTS[name]):
            return True
        self._note_waiting(name)
        return False

    def taken(self, name: str, request: Any, reservation: Reservation | bool) -> None:
        if isinstance(reservation, Reservation):
            request.meta[META_LANE] = (reservation.lane.alias, reservation.lane.kind)
            since = self._waiting_since.pop(name, None)
            if since is not None:
                self.crawler.stats.inc_value(f"tweetform/quota/wait_seconds{name}", round(time.time() - since, 3))

    def _note_waiting(self, name: str) -> None:
        if name in self._waiting_since:
            return
        now = time.time()
        self._waiting_since[name] = now
        endpoint = ENDPOINTS[name]
        ready = self.book.ready_at(endpoint)
        lanes = len(self.book.pool.lanes(endpoint))
        if ready:
            logger.info("waiting %s for %s quota (%d credential lane(s) used up), resumes %s",
                        human(ready - now), name, lanes, time.strftime("%H:%M:%S UTC", time.gmtime(ready)))
        else:
            logger.info("waiting for %s quota: %d credential lane(s) busy, resumes when their answers arrive", name, lanes)

    def sleep_until_quota(self, names: list[str]) -> None:
        """Nothing can go now: wake the engine when the earliest quota comes back."""
        times = [t for t in (self.book.ready_at(ENDPOINTS[n]) for n in names if n != NO_ENDPOINT) if t is not None]
        if not times:
            return  # an answer in flight will wake the engine
        at = min(times) + 0.01
        if self._wake is not None and time.time() < self._wake_at <= at:
            return  # an earlier wake-up is already set
        if self._wake is not None:
            self._wake.cancel()
        self._wake, self._wake_at = call_later(max(0.0, at - time.time()), self._wake_engine), at

    def _wake_engine(self) -> None:
        self._wake, self._wake_at = None, 0.0
        slot = getattr(self.crawler.engine, "_slot", None)  # Scrapy has no public "look at the scheduler now"
        if slot is not None:
            slot.nextcall.schedule()

    def close(self) -> None:
        if self._wake is not None:
            self._wake.cancel()
            self._wake = None
