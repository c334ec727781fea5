"""The scheduler of the Redis backend: scrapy-redis's Scheduler, with its queue and dupe filter.

From scrapy-redis's ``Scheduler`` this keeps the constructor, ``has_pending_requests``
and ``__len__``, and follows its ``open`` (the queue from ``queue_cls``, the dupe
filter from ``DUPEFILTER_CLASS.from_spider``), ``enqueue_request`` (dupe check,
then ``queue.push``) and ``next_request`` (``queue.pop``) line for line, except
for calls Scrapy 2.19 deprecates (see the comments). tweetform's queue
(:class:`~.queue.InFlightQueue`) adds per-endpoint queues that wait for quota,
in-flight tracking and batched pushes; this class adds:

* ``ack``: the request's callback output has been consumed, so it is done (once the
  scraper is done with it: :class:`~tweetform.state.base.AckAfterScraping`, as the local
  scheduler);
* ``close``: this worker's unfinished in-flight requests go back to the queue,
  so a stopped worker hands its work to the others.

Redis going away for a while does not crash the worker: requests it could not
push are kept in memory and pushed again, and taking work simply pauses.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.utils.misc import load_object
from scrapy_redis.scheduler import Scheduler as ScrapyRedisScheduler

from tweetform import state
from tweetform.state.base import AckAfterScraping
from tweetform.state.redis import connection, keys, serializer
from tweetform.meta import META_QID

logger = logging.getLogger(__name__)


class RedisScheduler(AckAfterScraping, ScrapyRedisScheduler):
    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "RedisScheduler":
        # not scrapy-redis's from_settings: it builds a client of its own, and the
        # crawler's components share one (connection.for_crawler)
        s = crawler.settings
        scheduler = cls(
            server=connection.for_crawler(crawler), persist=True, queue_key=keys.queue("%(spider)s", ""),
            queue_cls="tweetform.state.redis.queue.InFlightQueue", dupefilter_cls=s.get("DUPEFILTER_CLASS"),
            serializer=serializer,
        )
        scheduler.crawler = crawler
        scheduler.stats = crawler.stats
        return scheduler

    def open(self, spider: Any) -> None:
        self.gate = state.gate(self.crawler)
        self._redis_down_since: float | None = None
        # scrapy-redis's open, except its "Resuming crawl" line: that goes through
        # Spider.log(), deprecated in Scrapy 2.19 (a warning is an error here)
        self.spider = spider
        self.queue = load_object(self.queue_cls)(server=self.server, spider=spider, key=self.queue_key % {"spider": spider.name},
                                                 serializer=self.serializer)
        if not self.df:
            self.df = load_object(self.dupefilter_cls).from_spider(spider)
        try:
            waiting = len(self.queue)
        except redis.RedisError:
            waiting = 0
        if waiting:
            logger.info("joining distributed work: requests are queued for %s", spider.name)
        self.queue.bind(self.df, self.gate, self.stats)
        self.queue.on_redis_down, self.queue.on_redis_back = self._redis_down, self._redis_back
        self.queue.outbox.start()  # quota answers and page records ride the pops, pushes and acks (outbox.py)

    def close(self, reason: str) -> None:
        self.gate.close()
        self.close_acks()  # what the scraper still holds is not acknowledged: its lease gives it back
        try:
            self.sync()
            handed, _ = self.queue.reap(release_own=True)  # its own: not a hand-over, never dead-lettered
            if handed:
                logger.info("handed %d unfinished requests back to the queue", handed)
        except redis.RedisError as exc:
            logger.error("could not hand work back to Redis (%s); other workers will take it when this worker's heartbeat expires", type(exc).__name__)
        self.queue.outbox.stop()
        super().close(reason)

    def _redis_down(self) -> None:
        if self._redis_down_since is None:
            self._redis_down_since = time.time()
            logger.error("Redis is unreachable: keeping new requests in memory and waiting for it to come back")

    def _redis_back(self) -> None:
        if self._redis_down_since is not None:
            logger.info("Redis is back after %.0f s", time.time() - self._redis_down_since)
            self._redis_down_since = None

    # enqueue_request and next_request are scrapy-redis's, line for line, except that
    # they do not pass ``spider=`` to the stats: Scrapy 2.19 deprecates that argument,
    # and a deprecation warning is an error here (filterwarnings=error).
    def enqueue_request(self, request: Request) -> bool:
        if not request.dont_filter and self.df.request_seen(request):
            self.df.log(request, self.spider)
            return False
        self.stats.inc_value("scheduler/enqueued/redis")
        self.queue.push(request)
        return True

    def next_request(self) -> Request | None:
        self.acks_waiting()  # what the scraper is done with is acknowledged with the pop's sync
        try:
            request = self.queue.pop(self.idle_before_close)
        except redis.RedisError:
            self._redis_down()
            return None
        if request is not None:
            self.stats.inc_value("scheduler/dequeued/redis")
        return request

    def sync(self) -> None:
        """Push what is buffered, then acknowledge what is finished (in that order)."""
        self.acks_waiting()
        self.queue.sync()

    def ack(self, request: Request) -> None:
        """The request's callback has returned: it is done once Scrapy's scraper has handled everything
        the callback yielded (AckAfterScraping: an early ack could end the job, or fence out its retry,
        before its last outputs reach Redis)."""
        if not request.meta.get(META_QID):
            return
        super().ack(request)
        try:
            self.sync()
        except redis.RedisError:
            logger.warning("could not mark a request done while Redis is away; will do when it is back")

    def ack_done(self, requests: list[Request]) -> None:
        self.queue.finished(requests)
