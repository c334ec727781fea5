"""Scrapy's scheduler, acknowledging leased requests (the local backend's ``SCHEDULER``).

Without ``JOBDIR`` it is Scrapy's scheduler as it is. With ``JOBDIR`` its disk
queues are :mod:`tweetform.state.local.queue`'s leased rows: :meth:`ack` (called
when a page's callback output has been consumed) removes the page's row and
commits the transaction holding everything the page did.
"""

from __future__ import annotations

from scrapy import Request
from scrapy.core.scheduler import Scheduler

from tweetform.state.local.database import META_LEASE, database


class LocalScheduler(Scheduler):
    def ack(self, request: Request) -> None:
        if self.dqdir is not None and self.crawler is not None:
            database(self.crawler).ack(request.meta.get(META_LEASE))
