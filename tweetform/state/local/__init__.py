"""The embedded backend, for one process: in memory, or SQLite in Scrapy's ``JOBDIR``.

With ``JOBDIR`` the job (arguments, id, state, counters), its user claims and
levels, the request queue (leased rows) and the dupe filter share one SQLite
file, so a stopped or killed crawl started again with the same command goes on
where it stopped (README: Resume a crawl).
"""

from __future__ import annotations

from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.utils.job import job_dir

from tweetform.state.base import DONE, RUNNING, JobStore
from tweetform.state.local.memory import MemoryJobStore

__all__ = ["MemoryJobStore", "local_job_store"]


def local_job_store(crawler: Crawler) -> JobStore:
    """The local backend's job store: in the JOBDIR database when there is one."""
    store: MemoryJobStore
    if job_dir(crawler.settings):
        from tweetform.state.local.database import database
        from tweetform.state.local.sqlite import SqliteJobStore

        store = SqliteJobStore(database(crawler))
    else:
        store = MemoryJobStore()

    def spider_closed(spider: Any, reason: str) -> None:
        _closed(store, reason)

    crawler.signals.connect(spider_closed, signal=signals.spider_closed, weak=False)
    return store


def _closed(store: MemoryJobStore, reason: str) -> None:
    """A crawl that finished with nothing left queued finished its jobs: ``done``, with ``finished_at``."""
    if reason != "finished" or store.has_queued():
        return  # interrupted, or stopped for want of credentials: the job goes on when resumed
    for job_id in list(store.statuses):
        if store.state(job_id) == RUNNING:
            store.set_state(job_id, DONE)
    store.flush()
