"""Collect mode on a worker: pages go to their job's Redis stream, nothing to local files.

Switched on by ``TWEETFORM_COLLECT`` (with ``REDIS_URL``): the tweetform add-on
puts :class:`CollectMiddleware` in ``SPIDER_MIDDLEWARES`` and
:class:`CollectPipeline` in ``ITEM_PIPELINES`` in place of the bucket
pipeline. ``scrapy collect``, run where the data should live, writes the files.

Why a spider middleware: a callback acknowledges its request (distributed mode:
it leaves in-flight) when its generator ends, and Scrapy pulls a callback's
output ahead of the item pipelines (a small queue per response). The
middleware hands each page to Redis *inside* the output chain, so the
callback's generator cannot end — and acknowledge its request — before its
pages are in Redis: a worker killed at any point loses no page. The pipeline
hands over the items that reach it any other way (records a worker makes
itself, e.g. for a dead-lettered request).

Backpressure: a page goes in only while its job's stream holds less than
``TWEETFORM_COLLECT_MAX_BYTES`` (checked and counted in one Lua script, so all
workers together pass the cap by at most one page). At the cap the hand-over
waits without blocking the reactor; the callback waits with it, so its request
stays in flight, and Scrapy's scraper memory limit stops new downloads.
"""

from __future__ import annotations

import logging
import time
from typing import Any, AsyncIterator

import redis
from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import sleep

from tweetform.config import uses_redis
from tweetform.crawler_state import state_of
from tweetform.collect.stream import entry_for, script
from tweetform.items import PROVENANCE, PageItem
from tweetform.state.redis import keys

logger = logging.getLogger(__name__)
WAIT_FIRST, WAIT_MAX = 0.05, 1.0  # seconds between tries at the cap (doubling)
SENT = "_tweetform_collected"  # attribute set on an item once it is in Redis


class PageSender:
    """Hands pages to their job's stream, waiting at the cap (one per crawler)."""

    def __init__(self, crawler: Crawler, server: Any, max_bytes: int) -> None:
        self.stats = crawler.stats
        self.max_bytes = max_bytes
        self._add = script(server, "page_add")
        self._blocked_since: float | None = None
        self._redis_down = False

    async def send(self, item: PageItem) -> None:
        if getattr(item, SENT, False):
            return
        job = str(item[PROVENANCE].get("job") or "")
        fields, size = entry_for(item)
        args: list[Any] = [job, size, self.max_bytes]
        for name, value in fields.items():
            args += [name, value]
        stream_keys = [keys.page_stream(job), keys.pages_waiting(job), keys.collect_jobs(), keys.job(job)]
        pause = WAIT_FIRST
        while not self._try_add(stream_keys, args):
            self.stats.inc_value("tweetform/collect/waits")
            await sleep(pause)
            pause = min(pause * 2, WAIT_MAX)
        if self._blocked_since is not None:
            self.stats.inc_value("tweetform/collect/wait_seconds", time.monotonic() - self._blocked_since)
            self._blocked_since = None
        setattr(item, SENT, True)
        self.stats.inc_value("tweetform/collect/pages_sent")
        self.stats.inc_value("tweetform/collect/bytes_sent", size)

    def _try_add(self, stream_keys: list[str], args: list[Any]) -> bool:
        """One try: True when the page is in its stream."""
        try:
            total = self._add(keys=stream_keys, args=args)
        except redis.RedisError as exc:
            if not self._redis_down:
                self._redis_down = True
                logger.error("Redis is unreachable (%s): pages wait here until it is back", type(exc).__name__)
            return False
        if self._redis_down:
            self._redis_down = False
            logger.info("Redis is back: pages go to the collector again")
        if total >= 0:
            return True
        if self._blocked_since is None:
            self._blocked_since = time.monotonic()
            logger.info("waiting for scrapy collect: job %s has %d bytes waiting in Redis, its cap (TWEETFORM_COLLECT_MAX_BYTES)",
                        args[0], self.max_bytes)
        return False


def sender_for(crawler: Crawler) -> PageSender:
    """The crawler's one sender (shared by the middleware and the pipeline)."""
    held = state_of(crawler)
    if held.page_sender is None:
        if not uses_redis(crawler.settings):
            raise NotConfigured("TWEETFORM_COLLECT needs REDIS_URL")
        from tweetform.state.redis.connection import for_crawler

        held.page_sender = PageSender(crawler, for_crawler(crawler), crawler.settings.getint("TWEETFORM_COLLECT_MAX_BYTES"))
    return held.page_sender


class CollectMiddleware:
    """Spider middleware (outermost): each page is in Redis, and each new request
    scheduled, before the callback goes on — so before it acknowledges its request.

    Scrapy would schedule a callback's requests only after the callback's end (its
    acknowledgement): a job could then look finished (nothing queued, nothing in
    flight) with its next requests still in this process. The middleware hands them
    to the engine itself, as the scraper would, at once."""

    def __init__(self, crawler: Crawler, sender: PageSender) -> None:
        self.crawler = crawler
        self.sender = sender

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "CollectMiddleware":
        return cls(crawler, sender_for(crawler))

    async def process_spider_output(self, response: Any, result: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for out in result:
            if isinstance(out, Request):
                self.crawler.engine.crawl(out)
                continue
            if isinstance(out, PageItem):
                await self.sender.send(out)
            yield out


class CollectPipeline:
    """Hands over what the middleware has not (items a worker feeds to the pipelines itself)."""

    def __init__(self, sender: PageSender) -> None:
        self.sender = sender

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "CollectPipeline":
        return cls(sender_for(crawler))

    async def process_item(self, item: Any) -> Any:
        if isinstance(item, PageItem):
            await self.sender.send(item)
        return item
