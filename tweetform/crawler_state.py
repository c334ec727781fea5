"""What tweetform keeps per crawler, in one place: :class:`CrawlerState`.

A crawler's components share a few objects — one Redis client, one credential pool, quota book
and gate, one job store, one JOBDIR database, one collect-mode page sender, one worker name. They
live here, on the one object the tweetform add-on is (``ADDONS``: Scrapy makes one per crawler,
before any extension, middleware or pipeline), which every component reaches as Scrapy components
reach each other: ``crawler.get_addon(CrawlerState)`` (:func:`state_of`). Each field is made on
first use by the function named beside it, which owns that kind of object; this module imports
none of them, so anything may import it. The cost and budget middlewares are Scrapy components
themselves: they are reached with ``crawler.get_downloader_middleware()``.
"""

from __future__ import annotations

from typing import Any

from scrapy.crawler import Crawler


class CrawlerState:
    """One per crawler: the base of the tweetform add-on (:class:`tweetform.addons.DistributedAddon`)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.redis: Any = None  # tweetform.state.redis.connection.for_crawler: the components' one client
        self.outbox: Any = None  # tweetform.state.redis.outbox.for_crawler: write-only calls riding the next round trip
        self.redis_round_trips = [0]  # counted by that client's connections (connection.round_trips)
        self.worker_id: str | None = None  # tweetform.state.redis.node.worker_id: this crawler's name in Redis
        self.lease: Any = None  # tweetform.state.redis.node.lease_of: what this worker's heartbeats prove
        self.pool: Any = None  # tweetform.state.pool: the credentials as lanes
        self.book: Any = None  # tweetform.state.book: the quota book (in memory, or shared through Redis)
        self.gate: Any = None  # tweetform.state.gate: requests wait for quota here
        self.job_store: Any = None  # tweetform.state.job_store: job state (memory, JOBDIR SQLite or Redis)
        self.database: Any = None  # tweetform.state.local.database.database: the JOBDIR database
        self.page_sender: Any = None  # tweetform.collect.pipeline.sender_for: collect mode's pages to Redis
        self.bluesky_sessions: Any = None  # tweetform.state.bluesky_sessions: Bluesky account sessions

    def make_pool(self) -> Any:
        """A credential pool from the settings (the add-on makes it: it sits above credentials and proxies)."""
        raise NotImplementedError

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "CrawlerState":
        return cls(crawler)


def state_of(crawler: Crawler) -> CrawlerState:
    """The crawler's :class:`CrawlerState` (the tweetform add-on)."""
    found = crawler.get_addon(CrawlerState)
    if found is None:
        raise RuntimeError("the crawler has no tweetform add-on (ADDONS: tweetform.addons.DistributedAddon; tweetform's settings list it)")
    return found
