"""Scrapy's scheduler, acknowledging leased requests (the local backend's ``SCHEDULER``).

Without ``JOBDIR`` it is Scrapy's scheduler as it is. With ``JOBDIR`` its disk
queues are :mod:`tweetform.state.local.queue`'s leased rows, and:

* an ack (the spider's, when a callback has returned) takes effect once the
  scraper is done with the response (:class:`~tweetform.state.base.AckAfterScraping`):
  the page's row goes and the transaction holding everything the page did —
  written items aside, which are in their bucket files — is committed;
* no more requests are leased than ``CONCURRENT_REQUESTS``: responses waiting in
  the scraper count too, so a killed crawl fetches at most that many pages again.
"""

from __future__ import annotations

from typing import Any

from scrapy import Request
from scrapy.core.scheduler import Scheduler

from tweetform.state.base import AckAfterScraping
from tweetform.state.local.database import META_LEASE, Database, database


class LocalScheduler(AckAfterScraping, Scheduler):
    def open(self, spider: Any) -> Any:
        result = super().open(spider)
        self.db: Database | None = database(self.crawler) if self.dqs is not None and self.crawler else None
        self.max_leases = self.crawler.settings.getint("CONCURRENT_REQUESTS") if self.crawler else 16
        return result

    def ack(self, request: Request) -> None:
        if self.db is not None and META_LEASE in request.meta:
            super().ack(request)

    def ack_done(self, requests: list[Request]) -> None:
        assert self.db is not None
        self.db.ack_many(r.meta[META_LEASE] for r in requests)

    def next_request(self) -> Request | None:
        if self.db is not None:
            self.acks_waiting()
            if len(self.db.leased) >= self.max_leases and not len(self.mqs):
                return None  # what is leased is what a kill makes us fetch again
        return super().next_request()

    def close(self, reason: str) -> Any:
        self.close_acks()  # what the scraper still holds is not acknowledged: its lease gives it back
        return super().close(reason)
