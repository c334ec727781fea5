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
  scheduler). The acknowledgement, and the requests its page produced, ride the worker's
  next pop (one round trip for the three), at the latest :data:`SEND_DELAY` seconds after;
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
from scrapy.utils.asyncio import CallLaterResult, call_later
from scrapy.utils.misc import load_object
from scrapy_redis.scheduler import Scheduler as ScrapyRedisScheduler

from tweetform import state
from tweetform.state.base import AckAfterScraping
from tweetform.state.redis import connection, keys, serializer
from tweetform.state.redis.outbox import Outbox, has_loop
from tweetform.meta import META_QID

logger = logging.getLogger(__name__)

#: seconds a finished request's acknowledgement (and the requests its page produced) wait at most for the worker's
#: next pop to carry them, as the outbox's calls (the engine pops when a download ends: with every download slot
#: busy, not when the scraper is done; a worker with nothing left to pop does not)
SEND_DELAY = Outbox.DELAY


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
        self._send_timer: CallLaterResult | None = None
        self._closing = False
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
        self.queue.outbox.sync = self._send_waiting  # and the outbox's own round trip, when it makes one, carries ours

    def close(self, reason: str) -> None:
        self.gate.close()
        self._closing = True  # what waits is sent below, not by a timer after the close
        self._cancel_send()
        self.queue.outbox.sync = None
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
        if not self.queue.unsent and not self.queue.unacked:
            self._cancel_send()  # the pop carried what waited: nothing for the timer to send
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
        before its last outputs reach Redis). Nothing is sent now: the next pop carries it (:meth:`ack_done`)."""
        if not request.meta.get(META_QID):
            return
        super().ack(request)
        self._send_later()  # its page's requests the scraper already queued wait for the next pop too

    def ack_done(self, requests: list[Request]) -> None:
        """Buffered (after the requests they produced): sent with the next pop, at the latest :data:`SEND_DELAY` s after."""
        self.queue.finished(requests)
        self._send_later()

    def _send_later(self) -> None:
        """What waits (requests pushed, acknowledgements) is sent in a round trip of its own if no pop carries it within
        :data:`SEND_DELAY` seconds: a job's last acknowledgement ends it, an idle worker exits once nothing is in flight.
        Sent at each ack instead, it was a round trip most pages' next pop made anyway (~0.35 a page at 130 pages/s)."""
        if self._send_timer is None and not self._closing and has_loop():  # no loop: a unit test driving it syncs
            self._send_timer = call_later(SEND_DELAY, self._sent_late)

    def _cancel_send(self) -> None:
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None

    def _sent_late(self) -> None:
        self._send_timer = None  # it ran: nothing to cancel
        self._send_waiting()

    def _send_waiting(self) -> None:
        """Send what waits now (the timer's, or the outbox's round trip: whichever comes first carries both)."""
        if self._closing:
            return
        try:
            self.sync()
        except redis.RedisError:  # kept: the heartbeat's sync, the next pop or the next ack's timer sends them
            logger.warning("could not mark requests done while Redis is away; will do when it is back")
        if not self.queue.unsent and not self.queue.unacked:
            self._cancel_send()
