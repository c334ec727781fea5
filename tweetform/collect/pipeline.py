"""Collect mode on a worker: pages go to their job's Redis stream, nothing to local files.

Switched on by ``TWEETFORM_COLLECT`` (with ``REDIS_URL``): the tweetform add-on
puts :class:`CollectPipeline` in ``ITEM_PIPELINES`` in place of the bucket
pipeline. ``scrapy collect``, run where the data should live, writes the files.

Backpressure: a page goes in only while its job's stream holds less than
``TWEETFORM_COLLECT_MAX_BYTES`` (checked and counted in one Lua script, so all
workers together pass the cap by at most one page). At the cap, ``process_item``
waits without blocking the reactor; the callback that yielded the page is
paused meanwhile, so its request stays in flight (not acknowledged) and the
scraper's memory limit stops new downloads. A page is therefore in Redis before
its request is acknowledged: a worker killed at any point loses no page.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import sleep

from tweetform.collect.stream import entry_for, script
from tweetform.items import PROVENANCE, PageItem
from tweetform.state.redis import keys

logger = logging.getLogger(__name__)
WAIT_FIRST, WAIT_MAX = 0.05, 1.0  # seconds between tries at the cap (doubling)


class CollectPipeline:
    def __init__(self, crawler: Crawler, server: Any, max_bytes: int) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        self.server = server
        self.max_bytes = max_bytes
        self._add = script(server, "page_add")
        self._blocked_since: float | None = None
        self._redis_down = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "CollectPipeline":
        if not crawler.settings.get("REDIS_URL"):
            raise NotConfigured("TWEETFORM_COLLECT needs REDIS_URL")
        from tweetform.state.redis.connection import for_crawler

        return cls(crawler, for_crawler(crawler), crawler.settings.getint("TWEETFORM_COLLECT_MAX_BYTES"))

    async def process_item(self, item: Any) -> Any:
        if not isinstance(item, PageItem):
            return item
        job = str(item[PROVENANCE].get("job") or "")
        fields, size = entry_for(item)
        args = [job, size, self.max_bytes]
        for name, value in fields.items():
            args += [name, value]
        stream_keys = [keys.page_stream(job), keys.pages_waiting(job), keys.collect_jobs()]
        pause = WAIT_FIRST
        while not self._try_add(stream_keys, args):
            self.stats.inc_value("tweetform/collect/waits")
            await sleep(pause)
            pause = min(pause * 2, WAIT_MAX)
        if self._blocked_since is not None:
            waited = time.monotonic() - self._blocked_since
            self.stats.inc_value("tweetform/collect/wait_seconds", waited)
            self._blocked_since = None
        self.stats.inc_value("tweetform/collect/pages_sent")
        self.stats.inc_value("tweetform/collect/bytes_sent", size)
        return item

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
