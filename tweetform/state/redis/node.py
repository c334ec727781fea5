"""A worker's life in distributed mode: identity, heartbeat, reaping, taking jobs, stopping.

``WorkerNode`` is a Scrapy extension (enabled by the tweetform add-on when
``REDIS_URL`` is set). Every ``TWEETFORM_HEARTBEAT`` seconds it refreshes the
worker's heartbeat key (TTL ``TWEETFORM_HEARTBEAT_TTL``), puts back the
in-flight requests of workers whose heartbeat expired, and looks for a stop
request (``scrapy admin stop-node``). When the spider has nothing to do it
takes the next job message from Redis; the spider never closes for lack of work
unless ``TWEETFORM_EXIT_WHEN_IDLE`` is set (tests and one-off runs), in which
case it closes once no queue, in-flight request or job message is left.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from typing import Any

import redis
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider, NotConfigured
from scrapy.utils.asyncio import create_looping_call
from scrapy.utils.defer import deferred_from_coro

from tweetform.distributed import keys

logger = logging.getLogger(__name__)


def worker_id(crawler: Crawler) -> str:
    found = getattr(crawler, "_tweetform_worker", None)
    if found is None:
        found = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        crawler._tweetform_worker = found  # type: ignore[attr-defined]
    return found


class WorkerNode:
    def __init__(self, crawler: Crawler) -> None:
        from tweetform.distributed.scheduler import redis_client

        s = crawler.settings
        if not s.get("REDIS_URL"):
            raise NotConfigured
        self.crawler = crawler
        self.server = redis_client(s)
        self.worker = worker_id(crawler)
        self.interval = s.getfloat("TWEETFORM_HEARTBEAT")
        self.ttl = s.getfloat("TWEETFORM_HEARTBEAT_TTL")
        self.exit_when_idle = s.getbool("TWEETFORM_EXIT_WHEN_IDLE")
        self.loop: Any = None
        self._stopping = False
        self._idle_seen = False
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(self.spider_idle, signal=signals.spider_idle)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "WorkerNode":
        return cls(crawler)

    # --- life ------------------------------------------------------------------------------

    def spider_opened(self, spider: Any) -> None:
        self.spider = spider
        if getattr(spider, "given_job", None) is not None:
            self.exit_when_idle = True  # `scrapy crawl … -a user_id=…`: done when the work is done
        info = {"host": socket.gethostname(), "pid": os.getpid(), "spider": spider.name, "started": time.time()}
        try:
            self.server.hset(keys.workers(), self.worker, json.dumps(info))
        except redis.RedisError:
            logger.error("Redis is unreachable at start; will keep trying")
        self.beat()
        self.loop = create_looping_call(self.beat)
        self.loop.start(self.interval, now=False)
        logger.info("worker %s taking %s work from Redis", self.worker, spider.name)

    def spider_closed(self, spider: Any, reason: str) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        try:
            self.server.delete(keys.heartbeat(self.worker), keys.control(self.worker))
            self.server.hdel(keys.workers(), self.worker)
        except redis.RedisError:
            pass

    def beat(self) -> None:
        """Heartbeat, reap the dead, obey a stop request."""
        try:
            self.server.set(keys.heartbeat(self.worker), str(time.time()), px=int(self.ttl * 1000))
            scheduler = getattr(self.crawler, "_tweetform_scheduler", None)
            if scheduler is not None:
                scheduler.flush()
                moved = scheduler.queue.reap()
                if moved:
                    logger.warning("put back %d requests held by workers that stopped beating", moved)
                lost = scheduler.queue.reclaim_lost()
                if lost:
                    logger.warning("put back %d requests whose hand-over was lost while Redis was away", lost)
            if self.server.get(keys.control(self.worker)) in (b"stop", "stop"):
                self.stop("stop requested through Redis")
        except redis.RedisError as exc:
            logger.warning("heartbeat failed (%s); retrying", type(exc).__name__)

    def stop(self, why: str) -> None:
        if self._stopping:
            return
        self._stopping = True
        logger.info("worker %s stopping: %s", self.worker, why)
        deferred_from_coro(self.crawler.engine.close_spider_async(reason="shutdown"))

    # --- jobs --------------------------------------------------------------------------------

    def spider_idle(self, spider: Any) -> None:
        if self._stopping:
            return
        started = self.take_jobs(spider)
        if started:
            raise DontCloseSpider
        if self.exit_when_idle and self.nothing_left(spider):
            # twice in a row (Scrapy re-checks an idle spider every few seconds): another
            # worker may have just taken a job whose first requests are not queued yet
            if self._idle_seen:
                return
            self._idle_seen = True
        else:
            self._idle_seen = False
        raise DontCloseSpider

    def take_jobs(self, spider: Any, limit: int = 8) -> int:
        """Start up to ``limit`` job messages from this spider's inbox."""
        from tweetform.distributed.jobs import start_job_message

        started = 0
        for _ in range(limit):
            try:
                raw = self.server.lpop(keys.jobs_inbox(spider.name))
            except redis.RedisError:
                return started
            if raw is None:
                break
            if start_job_message(self.crawler, spider, raw):
                started += 1
        return started

    def nothing_left(self, spider: Any) -> bool:
        try:
            scheduler = self.crawler._tweetform_scheduler  # type: ignore[attr-defined]
            return (
                not scheduler.has_pending_requests()
                and scheduler.queue.in_flight_count() == 0
                and self.server.llen(keys.jobs_inbox(spider.name)) == 0
            )
        except redis.RedisError:
            return False
