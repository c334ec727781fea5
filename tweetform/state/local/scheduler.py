"""Scrapy's scheduler, acknowledging leased requests (the local backend's ``SCHEDULER``).

Without ``JOBDIR`` it is Scrapy's scheduler as it is. With ``JOBDIR`` its disk
queues are :mod:`tweetform.state.local.queue`'s leased rows, and:

* :meth:`ack` (the spider calls it when a callback has returned) waits until the
  scraper is done with the response: Scrapy pulls a callback's outputs up to two
  ahead of processing them, so the callback's end comes before its last item is
  written or its last request queued. Then the page's row goes and the
  transaction holding everything the page did is committed.
* no more requests are leased than ``CONCURRENT_REQUESTS``: responses waiting in
  the scraper count too, so a killed crawl fetches at most that many pages again.
"""

from __future__ import annotations

from typing import Any

from scrapy import Request
from scrapy.core.scheduler import Scheduler
from scrapy.utils.asyncio import call_later

from tweetform.state.local.database import META_LEASE, Database, database


class LocalScheduler(Scheduler):
    def open(self, spider: Any) -> Any:
        result = super().open(spider)
        self.db: Database | None = database(self.crawler) if self.dqs is not None and self.crawler else None
        self.max_leases = self.crawler.settings.getint("CONCURRENT_REQUESTS") if self.crawler else 16
        self._returned: list[Request] = []  # callbacks returned, outputs maybe still in the scraper
        self._poll: Any = None
        return result

    def ack(self, request: Request) -> None:
        if self.db is None or META_LEASE not in request.meta:
            return
        self._returned.append(request)
        if self._poll is None:
            self._poll = call_later(0, self._poll_acks)

    def _poll_acks(self) -> None:
        self._poll = None
        if self._ack_finished() and self._poll is None:
            self._poll = call_later(0, self._poll_acks)

    def _ack_finished(self, everything: bool = False) -> int:
        """Ack the requests the scraper is done with (one commit for all); how many wait still."""
        if not self._returned or self.db is None:
            return 0
        slot = getattr(getattr(self.crawler.engine, "scraper", None), "slot", None) if self.crawler else None
        active = slot.active if slot is not None and not everything else ()
        waiting = [r for r in self._returned if r in active]
        if len(waiting) < len(self._returned):
            self.db.ack_many(r.meta[META_LEASE] for r in self._returned if r not in active)
            self._returned = waiting
        return len(waiting)

    def next_request(self) -> Request | None:
        if self.db is not None:
            self._ack_finished()
            if len(self.db.leased) >= self.max_leases and not len(self.mqs):
                return None  # what is leased is what a kill makes us fetch again
        return super().next_request()

    def close(self, reason: str) -> Any:
        self._ack_finished(everything=True)  # the engine closes once the scraper is idle
        return super().close(reason)
