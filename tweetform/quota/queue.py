"""Requests wait for quota in the scheduler, one queue per endpoint.

``QuotaAwarePriorityQueue`` is a Scrapy ``SCHEDULER_PRIORITY_QUEUE`` (modelled
on Scrapy's ``DownloaderAwarePriorityQueue``): it keeps a priority queue per API
endpoint and only pops a request when :class:`~tweetform.quota.book.QuotaBook`
reserves quota for it, attaching the chosen lane. Requests for an exhausted
endpoint stay queued — they hold no download slot and no concurrency — while
requests for other endpoints go on. When nothing can go, the engine is woken
at the earliest reset instead of polling.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Iterable

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.pqueues import ScrapyPriorityQueue, _path_safe
from scrapy.utils.asyncio import call_later

from tweetform.api.endpoints import ENDPOINTS
from tweetform.quota import runtime

logger = logging.getLogger(__name__)
META_LANE = "tweetform_lane"  # (alias, kind) reserved for this attempt
NO_ENDPOINT = "-"


class QuotaAwarePriorityQueue:
    @classmethod
    def from_crawler(cls, crawler: Crawler, downstream_queue_cls: type, key: str,
                     startprios: dict[str, Iterable[int]] | None = None, *, start_queue_cls: type | None = None) -> "QuotaAwarePriorityQueue":
        return cls(crawler, downstream_queue_cls, key, startprios, start_queue_cls=start_queue_cls)

    def __init__(self, crawler: Crawler, downstream_queue_cls: type, key: str,
                 startprios: dict[str, Iterable[int]] | None = None, *, start_queue_cls: type | None = None) -> None:
        self.crawler = crawler
        self.downstream_queue_cls = downstream_queue_cls
        self.start_queue_cls = start_queue_cls
        self.key = key
        self.queues: dict[str, ScrapyPriorityQueue] = {}
        self._turn = 0
        self._wake: Any = None
        self._wake_at = 0.0
        self._waiting_since: dict[str, float] = {}
        for endpoint, prios in (startprios or {}).items():
            self.queues[endpoint] = self._new_queue(endpoint, prios)

    def _new_queue(self, endpoint: str, startprios: Iterable[int] = ()) -> ScrapyPriorityQueue:
        return ScrapyPriorityQueue(self.crawler, self.downstream_queue_cls, self.key + "/" + _path_safe(endpoint),
                                   startprios, start_queue_cls=self.start_queue_cls)

    def push(self, request: Request) -> None:
        endpoint = request.meta.get("tweetform_endpoint") or NO_ENDPOINT
        queue = self.queues.get(endpoint)
        if queue is None:
            queue = self.queues[endpoint] = self._new_queue(endpoint)
        queue.push(request)

    def pop(self) -> Request | None:
        book = runtime.book(self.crawler)
        names = sorted(self.queues)
        if not names:
            return None
        # round-robin over endpoints, so one busy endpoint does not starve another
        for i in range(len(names)):
            name = names[(self._turn + i) % len(names)]
            queue = self.queues[name]
            if name == NO_ENDPOINT:
                return self._take(name, queue, None)
            endpoint = ENDPOINTS[name]
            if not book.has_lanes(endpoint):
                return self._take(name, queue, None)  # the signing middleware stops the crawl
            reservation = book.reserve(endpoint)
            if reservation is None:
                self._note_waiting(name)
                continue
            self._turn = (self._turn + i + 1) % max(1, len(names))
            return self._take(name, queue, reservation)
        self._schedule_wake(book)
        return None

    def _take(self, name: str, queue: ScrapyPriorityQueue, reservation: Any) -> Request | None:
        request = queue.pop()
        if not len(queue):
            del self.queues[name]
            queue.close()
        if request is None:
            if reservation is not None:
                runtime.book(self.crawler).failed(reservation)
            return None
        if reservation is not None:
            request.meta[META_LANE] = (reservation.lane.alias, reservation.lane.kind)
            self._done_waiting(name)
        return request

    def _note_waiting(self, name: str) -> None:
        if name in self._waiting_since:
            return
        self._waiting_since[name] = time.time()
        book = runtime.book(self.crawler)
        endpoint = ENDPOINTS[name]
        ready = book.ready_at(endpoint)
        lanes = len(book.pool.lanes(endpoint))
        when = time.strftime("%H:%M:%S UTC", time.gmtime(ready)) if ready else "when an answer in flight arrives"
        wait = f"{max(0.0, ready - time.time()):.0f} s" if ready else "a moment"
        logger.info("waiting %s for %s quota (%d credential lane(s) exhausted), resumes %s", wait, name, lanes, when)

    def _done_waiting(self, name: str) -> None:
        since = self._waiting_since.pop(name, None)
        if since is not None:
            stats = self.crawler.stats
            waited = time.time() - since
            stats.inc_value(f"tweetform/quota/wait_seconds{name}", round(waited, 3))

    def _schedule_wake(self, book: Any) -> None:
        """Wake the engine when the earliest quota comes back (it may not poll for seconds)."""
        times = [t for t in (book.ready_at(ENDPOINTS[n]) for n in self.queues if n != NO_ENDPOINT) if t is not None]
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
        engine = self.crawler.engine
        slot = getattr(engine, "_slot", None)  # Scrapy has no public "look at the scheduler now"
        if slot is not None:
            slot.nextcall.schedule()

    def close(self) -> dict[str, list[int]]:
        if self._wake is not None:
            self._wake.cancel()
        state = {name: queue.close() for name, queue in self.queues.items()}
        self.queues.clear()
        return state

    def __len__(self) -> int:
        return sum(len(q) for q in self.queues.values())
