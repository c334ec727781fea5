"""The embedded backend, for one process: in memory, or SQLite in Scrapy's ``JOBDIR``.

With ``JOBDIR`` the job (arguments, id, state, counters), its user claims and
levels, the request queue (leased rows) and the dupe filter share one SQLite
file, so a stopped or killed crawl started again with the same command goes on
where it stopped (README: Resume a crawl).
"""

from __future__ import annotations

from scrapy.crawler import Crawler
from scrapy.utils.job import job_dir

from tweetform.state.base import JobStore
from tweetform.state.local.memory import MemoryJobStore

__all__ = ["MemoryJobStore", "local_job_store"]


def local_job_store(crawler: Crawler) -> JobStore:
    """The local backend's job store: in the JOBDIR database when there is one."""
    if job_dir(crawler.settings):
        from tweetform.state.local.database import database
        from tweetform.state.local.sqlite import SqliteJobStore

        return SqliteJobStore(database(crawler))
    return MemoryJobStore()
