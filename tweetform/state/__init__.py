"""The state layer: job state, the request queue (with leases) and quota, behind one interface.

:mod:`.base` is the interface; :mod:`.local` the backend for one process
(in memory, or in Scrapy's ``JOBDIR``); :mod:`.redis` the backend for many
processes. The backend is chosen here, once per crawler, from its settings:
``REDIS_URL`` set → Redis. The Redis backend's scheduler, dupe filter and
worker-node extension are switched on by the add-on (:mod:`tweetform.addons`).
"""

from __future__ import annotations

import weakref
from typing import Any

from scrapy.crawler import Crawler

from tweetform.config import uses_redis
from tweetform.quota.book import QuotaBook
from tweetform.state.base import JobStore
from tweetform.state.local import local_job_store
from tweetform.state.redis import connection
from tweetform.state.redis.jobs import RedisJobStore
from tweetform.state.redis.quota import RedisQuotaBook

_stores: "weakref.WeakKeyDictionary[Crawler, JobStore]" = weakref.WeakKeyDictionary()


def job_store(crawler: Crawler) -> JobStore:
    """The crawler's job store (one per crawler): Redis with ``REDIS_URL``, else local."""
    store = _stores.get(crawler)
    if store is None:
        if uses_redis(crawler.settings):
            store = RedisJobStore.from_crawler(crawler)
        else:
            store = local_job_store(crawler)  # in memory, or in JOBDIR
        _stores[crawler] = store
    return store


def existing_job_store(crawler: Crawler) -> JobStore | None:
    """The crawler's job store if one was made (for read-only observers such as the progress line)."""
    return _stores.get(crawler)


def quota_book(crawler: Crawler, pool: Any) -> Any:
    """The quota book of the crawler's backend: in memory, or shared through Redis."""
    s = crawler.settings
    margin = s.getfloat("TWEETFORM_QUOTA_RESET_MARGIN")
    rate = s.getint("TWEETFORM_BLUESKY_RATE", 3000)  # Bluesky hosts that send no ratelimit-* headers
    if uses_redis(s):
        return RedisQuotaBook(pool, connection.for_crawler(crawler), margin=margin, hold=s.getfloat("DOWNLOAD_TIMEOUT") + 30,
                              bluesky_rate=rate)
    if s.get("JOBDIR"):  # what the job's answers said of the quota outlives a stop
        from tweetform.state.local.database import database
        from tweetform.state.local.quota import KeptQuotaBook

        return KeptQuotaBook(pool, database(crawler), margin=margin, bluesky_rate=rate)
    return QuotaBook(pool, margin=margin, bluesky_rate=rate)


def request_finished(crawler: Crawler, request: Any) -> None:
    """A request's callback output has been consumed: its backend's lease ends (Redis: no longer in flight)."""
    engine = getattr(crawler, "engine", None)
    ack = getattr(engine.scheduler if engine is not None else None, "ack", None)
    if ack is not None:
        ack(request)
