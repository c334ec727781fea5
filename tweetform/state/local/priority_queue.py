"""Requests wait for quota in the scheduler, one queue per endpoint (single process).

``QuotaAwarePriorityQueue`` is a Scrapy ``SCHEDULER_PRIORITY_QUEUE`` (modelled
on Scrapy's ``DownloaderAwarePriorityQueue``): it keeps a priority queue per API
endpoint and only pops a request when the :class:`~tweetform.quota.gate.QuotaGate`
reserves quota for it, attaching the chosen lane. Requests for an exhausted
endpoint stay queued — they hold no download slot and no concurrency — while
requests for other endpoints go on.
"""

from __future__ import annotations

from typing import Iterable

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.pqueues import ScrapyPriorityQueue, _path_safe

from tweetform import state
from tweetform.quota.gate import META_LANE, NO_ENDPOINT

__all__ = ["QuotaAwarePriorityQueue", "META_LANE"]


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
        self.gate = state.gate(crawler)
        self._turn = 0
        stored = getattr(downstream_queue_cls, "stored_startprios", None)
        if key and stored is not None:  # JOBDIR rows: what is queued now, even after a crash
            startprios = stored(crawler)
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
        names = sorted(self.queues)
        # round-robin over endpoints, so one busy endpoint does not starve another
        for i in range(len(names)):
            name = names[(self._turn + i) % len(names)]
            reservation = self.gate.reserve(name)
            if reservation is None:
                continue
            self._turn = (self._turn + i + 1) % len(names)
            queue = self.queues[name]
            request = queue.pop()
            if not len(queue):
                del self.queues[name]
                queue.close()
            if request is None:
                if not isinstance(reservation, bool):
                    self.gate.book.cancel(reservation)
                continue
            self.gate.taken(name, request, reservation)
            return request
        self.gate.sleep_until_quota(names)
        return None

    def close(self) -> dict[str, list[int]]:
        self.gate.close()
        state = {name: queue.close() for name, queue in self.queues.items()}
        self.queues.clear()
        return state

    def __len__(self) -> int:
        return sum(len(q) for q in self.queues.values())
