"""The state layer: job state, the request queue (with leases) and quota, behind one interface.

:mod:`.base` is the interface; :mod:`.local` the backend for one process
(in memory, or in Scrapy's ``JOBDIR``); :mod:`.redis` the backend for many
processes. The backend is chosen here, once per crawler, from its settings:
``REDIS_URL`` set → Redis. The Redis backend's scheduler, dupe filter and
worker-node extension are switched on by the add-on (:mod:`tweetform.addons`).
"""

from __future__ import annotations

from typing import Any

from scrapy.crawler import Crawler

from tweetform.config import uses_redis
from tweetform.crawler_state import state_of
from tweetform.api.bluesky import Sessions
from tweetform.quota.book import QuotaBook
from tweetform.quota.gate import QuotaGate
from tweetform.quota.pool import CredentialPool
from tweetform.state.base import JobStore
from tweetform.state.local import local_job_store
from tweetform.state.redis import connection, outbox
from tweetform.state.redis.jobs import RedisJobStore
from tweetform.state.redis.quota import RedisQuotaBook

def job_store(crawler: Crawler) -> JobStore:
    """The crawler's job store (one per crawler): Redis with ``REDIS_URL``, else local."""
    held = state_of(crawler)
    if held.job_store is None:
        if uses_redis(crawler.settings):
            held.job_store = RedisJobStore.from_crawler(crawler)
        else:
            held.job_store = local_job_store(crawler)  # in memory, or in JOBDIR
    return held.job_store


def existing_job_store(crawler: Crawler) -> JobStore | None:
    """The crawler's job store if one was made (for read-only observers such as the progress line)."""
    return state_of(crawler).job_store


def pool(crawler: Crawler) -> CredentialPool:
    """The crawler's credentials as lanes."""
    held = state_of(crawler)
    if held.pool is None:
        held.pool = held.make_pool()  # the add-on knows credentials and proxies (tweetform.addons)
    return held.pool


def book(crawler: Crawler) -> Any:
    """The crawler's quota book: in memory, or shared through Redis (:func:`quota_book` chooses)."""
    held = state_of(crawler)
    if held.book is None:
        held.book = quota_book(crawler, pool(crawler))
    return held.book


def gate(crawler: Crawler) -> QuotaGate:
    """The crawler's quota gate (requests wait in the scheduler until it reserves quota for them)."""
    held = state_of(crawler)
    if held.gate is None:
        held.gate = QuotaGate(crawler, book(crawler))
    return held.gate


def existing_gate(crawler: Crawler) -> QuotaGate | None:
    """The crawler's gate if one was made (the progress line shows its waits)."""
    return state_of(crawler).gate


def bluesky_sessions(crawler: Crawler, accounts: list[Any], post: Any) -> Sessions:
    """The crawler's Bluesky account sessions, made once."""
    held = state_of(crawler)
    if held.bluesky_sessions is None:
        held.bluesky_sessions = Sessions(accounts, crawler.settings.get("TWEETFORM_BLUESKY_PDS"), post)
    return held.bluesky_sessions


def existing_sessions(crawler: Crawler) -> Sessions | None:
    return state_of(crawler).bluesky_sessions


def quota_book(crawler: Crawler, pool: Any) -> Any:
    """The quota book of the crawler's backend: in memory, or shared through Redis."""
    s = crawler.settings
    margin = s.getfloat("TWEETFORM_QUOTA_RESET_MARGIN")
    rate = s.getint("TWEETFORM_BLUESKY_RATE", 3000)  # Bluesky hosts that send no ratelimit-* headers
    if uses_redis(s):
        return RedisQuotaBook(pool, connection.for_crawler(crawler), margin=margin, hold=s.getfloat("DOWNLOAD_TIMEOUT") + 30,
                              bluesky_rate=rate, outbox=outbox.for_crawler(crawler))
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
