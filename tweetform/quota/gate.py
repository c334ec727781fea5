"""The scheduler's side of quota: which endpoints may send now, and waking up in time.

Both request queues — Scrapy's in one process
(:class:`tweetform.state.local.priority_queue.QuotaAwarePriorityQueue`) and the shared Redis
queue (:class:`tweetform.state.redis.queue.InFlightQueue`) — hold requests
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

from tweetform.config import uses_redis
from tweetform.api.endpoints import ENDPOINTS
from tweetform.quota.book import Reservation

logger = logging.getLogger(__name__)
META_LANE = "tweetform_lane"  # (alias, kind, reservation id) reserved for this attempt
NO_ENDPOINT = "-"  # requests that are not API calls
SHARED_REPOLL = 0.25  # seconds: with shared quota, other workers' answers free it without waking us


def human(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} m"
    if seconds >= 60:
        return f"{seconds // 60} m {seconds % 60} s"
    return f"{seconds} s"


class QuotaGate:
    def __init__(self, crawler: Crawler, book: Any) -> None:
        self.crawler = crawler
        self.book = book  # in-process or shared (tweetform.state.book)
        self._wake: Any = None
        self._wake_at = 0.0
        self._waiting_since: dict[str, float] = {}
        self.shared = uses_redis(crawler.settings)  # quota shared with other processes

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

    def taken(self, name: str, request: Any, reservation: Reservation | bool) -> None:
        if isinstance(reservation, Reservation):
            request.meta[META_LANE] = (reservation.lane.alias, reservation.lane.kind, reservation.rid)
            since = self._waiting_since.pop(name, None)
            if since is not None:
                self.crawler.stats.inc_value(f"tweetform/quota/wait_seconds{name}", round(time.time() - since, 3))

    def note_waiting(self, name: str) -> None:
        """An endpoint with requests waits for quota (the shared queue found it so): say so once."""
        self._note_waiting(name)

    def _note_waiting(self, name: str) -> None:
        if name in self._waiting_since:
            return
        now = time.time()
        self._waiting_since[name] = now
        logger.info("%s", self.describe_wait(name, now))

    def describe_wait(self, name: str, now: float) -> str:
        """The one line that says why an endpoint waits, for how long, and when it resumes."""
        endpoint = ENDPOINTS[name]
        ready = self.book.ready_at(endpoint)
        lanes = len(self.book.pool.lanes(endpoint))
        if not lanes:
            held = len(self.book.pool.lanes(endpoint, include_held=True))
            logger.info("waiting for %s: all %d credential(s) sit out until their pinned proxies recover", name, held)
            return
        if ready:
            return (f"waiting {human(ready - now)} for {name} quota ({lanes} credential lane(s) used up), "
                    f"resumes {time.strftime('%H:%M:%S UTC', time.gmtime(ready))}")
        return f"waiting for {name} quota: {lanes} credential lane(s) busy, resumes when their answers arrive"

    def current_waits(self) -> list[str]:
        """:meth:`describe_wait` for every endpoint waiting for quota now (the progress display shows them)."""
        now = time.time()
        return [self.describe_wait(name, now) for name in list(self._waiting_since)
                if name in ENDPOINTS and not self.book.available_now(ENDPOINTS[name])]

    def sleep_until_quota(self, names: list[str]) -> None:
        """Nothing can go now: wake the engine when the earliest quota comes back."""
        times = [t for t in (self.book.ready_at(ENDPOINTS[n]) for n in names if n != NO_ENDPOINT) if t is not None]
        if not times:
            if not self.shared:
                return  # an answer in flight will wake the engine
            # the answers in flight may be other workers': look again shortly
            times = [time.time() + SHARED_REPOLL]
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


def reservation_of(request: Any) -> Reservation | None:
    """The quota reservation a request carries (None if it carries none)."""
    from tweetform.quota.pool import Lane

    lane = request.meta.get(META_LANE)
    if not lane or "tweetform_endpoint" not in request.meta:
        return None
    alias, kind, *rest = lane
    key = request.meta["tweetform_endpoint"]
    bucket = ENDPOINTS[key].bucket if key in ENDPOINTS else key
    return Reservation(Lane(alias, kind), bucket, rest[0] if rest else "")
