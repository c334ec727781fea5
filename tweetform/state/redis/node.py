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
from dataclasses import dataclass
from typing import Any

import redis
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider, NotConfigured
from scrapy.http import Response
from scrapy.utils.asyncio import create_looping_call
from scrapy.utils.defer import deferred_from_coro

from tweetform.config import uses_redis
from tweetform.crawler_state import state_of
from tweetform.api.errors import Outcome
from tweetform.state.redis import connection, control, keys, scripts
from tweetform.state.redis.jobs import start_job_message

logger = logging.getLogger(__name__)


@dataclass
class Delivery:
    """How this worker got a request (:meth:`InFlightQueue.pop_from` puts it in the request's meta, ``META_DELIVERY``;
    the spider hands it to the request's pages, ``PageItem.delivery``). ``first``: the pop said nobody else can have
    held it (pushed once, never handed over, released, reclaimed or retried, its job begun under the redis-server
    process the pop ran in: ``lua/queue_pop.lua``); ``sent``: when the
    pop was sent (this worker's monotonic clock); ``connects``: the client's connections then
    (:func:`connection.connects`). ``retried`` is set when the request goes back to the queue (its retry, a split):
    another worker may take that and write the same page."""

    first: bool
    sent: float
    connects: int
    retried: bool = False


class Lease:
    """What this worker knows of its heartbeat key, to prove it was never taken for dead since a moment.

    Each beat SETs the key with a TTL; Redis runs the SET between its send and its reply, so the key exists at least
    until send + TTL. Two beats are one unbroken stretch when the later one was answered before the earlier one's
    send + TTL. While the stretch began before a request's pop and the last beat's send + TTL is still ahead (less a
    margin for clock rates and the write that follows), no reaper found the key missing: the request stayed this
    worker's, nobody else was handed it. Anything not known (no beat yet, a gap, the worker released its requests):
    not proven."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self.margin = min(2.0, ttl / 5)
        self.since: float | None = None  # when the key was last set after a gap (a beat's reply)
        self.last_sent: float | None = None  # when the last answered beat was sent
        self.released = False

    def beaten(self, sent: float, answered: float) -> None:
        """A heartbeat SET sent at ``sent`` was answered at ``answered`` (monotonic)."""
        if self.released:
            return
        if self.last_sent is None or answered >= self.last_sent + self.ttl:
            self.since = answered  # the key may have expired between the two: a new stretch
        self.last_sent = sent

    def release(self) -> None:
        """The worker handed its requests back (it stops): nothing it holds is proven its own any more."""
        self.released = True
        self.since = self.last_sent = None

    def held_since(self, moment: float, now: float | None = None) -> bool:
        """Whether the key provably existed from ``moment`` until now (monotonic)."""
        if self.since is None or self.last_sent is None or self.released:
            return False
        now = time.monotonic() if now is None else now
        return self.since <= moment and now < self.last_sent + self.ttl - self.margin

    def proves_only_writer(self, delivery: Delivery | None, connects: int) -> bool:
        """Whether this worker is the only one that can have fetched the delivered request's pages: a first delivery,
        not given back since, its lease unbroken since the pop, and no new connection since (a Redis that restarted
        may have come back with older data: the pop itself lost, the request queued again)."""
        return (delivery is not None and delivery.first and not delivery.retried and delivery.connects == connects
                and self.held_since(delivery.sent))


def lease_of(crawler: Crawler) -> Lease:
    """The crawler's :class:`Lease` (kept in its CrawlerState); its WorkerNode beats it."""
    held = state_of(crawler)
    if held.lease is None:
        held.lease = Lease(crawler.settings.getfloat("TWEETFORM_HEARTBEAT_TTL"))
    return held.lease


def worker_id(crawler: Crawler) -> str:
    """This crawler's name in Redis: host, pid and a random tag (one per crawler)."""
    held = state_of(crawler)
    if held.worker_id is None:
        held.worker_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    return held.worker_id


def redis_scheduler(crawler: Crawler) -> Any:
    """The crawler's Redis scheduler, or None (not open yet, or another scheduler)."""
    engine = getattr(crawler, "engine", None)
    scheduler = engine.scheduler if engine is not None else None
    return scheduler if hasattr(scheduler, "ack") and hasattr(scheduler, "queue") else None


def give_back_dead(server: Any, spider: str, me: str) -> dict[str, int]:
    """Each indexed worker without a heartbeat (``me`` aside): its job messages go back to the inbox and
    it leaves the processors index, in one script each (``lua/job_give_back.lua``). Messages given back, by worker."""
    script = scripts.load(server, "job_give_back")
    given = {}
    for worker in sorted(w.decode() if isinstance(w, bytes) else w for w in server.smembers(keys.jobs_processors(spider))):
        if worker == me:
            continue
        moved = int(script(keys=[keys.jobs_processing(spider, worker), keys.jobs_inbox(spider), keys.jobs_processors(spider),
                                 keys.heartbeat(worker)], args=[keys.job_templates(), worker]))
        if moved >= 0:
            given[worker] = moved
    return given


class WorkerNode:
    def __init__(self, crawler: Crawler) -> None:
        s = crawler.settings
        if not uses_redis(s):
            raise NotConfigured
        self.crawler = crawler
        self.server = connection.for_crawler(crawler)
        self.worker = worker_id(crawler)
        self.interval = s.getfloat("TWEETFORM_HEARTBEAT")
        self.ttl = s.getfloat("TWEETFORM_HEARTBEAT_TTL")
        self.lease = lease_of(crawler)  # what the beats prove (the bucket pipeline reads it)
        self.exit_when_idle = s.getbool("TWEETFORM_EXIT_WHEN_IDLE")
        self.job_state_ttl = s.getfloat("TWEETFORM_JOB_STATE_TTL")
        self.loop: Any = None
        self._stopping = False
        self._idle_seen = False
        self._beats = 0
        self._processors_indexed = False  # give_back_messages has added older processing lists to their index
        self.pending_starts: list[tuple[str, str, bytes | str]] = []  # (job, processing list, message): seeds not yet queued
        # a take met Redis away: its LMOVE may have run (its answer lost), or its start stopped half-way; the message is
        # then in this worker's processing list unknown to it (only a dead worker's list is given back): take_jobs reads it
        self.unsure_takes = False
        self.crawl_hold: str | None = None  # the job of `scrapy crawl … -a …`, until its start requests are all queued
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
        try:  # registered before any hold, so a death is noticed (give_back_messages) and its holds end
            self.server.hset(keys.workers(), self.worker, json.dumps(info))
        except redis.RedisError:
            logger.error("Redis is unreachable at start; will keep trying")
        if getattr(spider, "given_job", None) is not None:
            # `scrapy crawl … -a …` queues its seeds from start(): held until start() is exhausted and synced
            try:
                spider.store.hold(spider.given_job.job, self.worker)
                self.crawl_hold = spider.given_job.job
            except redis.RedisError:
                logger.error("Redis is unreachable at start; will keep trying")
        self.beat()
        self.loop = create_looping_call(self.beat)
        self.loop.start(self.interval, now=False)
        logger.info("worker %s taking %s work from Redis", self.worker, spider.name)

    def spider_closed(self, spider: Any, reason: str) -> None:
        self.crawler.stats.set_value("tweetform/redis/round_trips", connection.round_trips(self.crawler))
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        try:
            control.expire_ended(self.server, self.job_state_ttl)  # a last sweep: jobs this worker saw end
            self.server.delete(keys.heartbeat(self.worker), keys.control(self.worker))
            self.server.hdel(keys.workers(), self.worker)
        except redis.RedisError:
            pass

    def beat(self) -> None:
        """Heartbeat, reap the dead, obey a stop request."""
        try:
            self.refresh_heartbeat()
            scheduler = redis_scheduler(self.crawler)
            if scheduler is not None:
                scheduler.sync()
                moved, dead = scheduler.queue.reap()
                if moved - len(dead):
                    logger.warning("put back %d requests held by workers that stopped beating", moved - len(dead))
                for request in dead:
                    self.dead_lettered(request)
                lost = scheduler.queue.reclaim_lost()
                if lost:
                    logger.warning("put back %d requests whose hand-over was lost while Redis was away", lost)
                self.seeds_yielded()
                self.finish_starts()
                self._beats += 1
                if self._beats % 5 == 1:
                    self.give_back_messages()
                    control.expire_ended(self.server, self.job_state_ttl)
            if self.server.get(keys.control(self.worker)) in (b"stop", "stop"):
                self.stop("stop requested through Redis")
        except redis.RedisError as exc:
            logger.warning("heartbeat failed (%s); retrying", type(exc).__name__ if connection.redis_away(exc) else connection.refusal(exc))

    def refresh_heartbeat(self) -> None:
        """Set the heartbeat key for another TTL; the lease learns when (what it proves: :class:`Lease`)."""
        sent = time.monotonic()
        self.server.set(keys.heartbeat(self.worker), str(time.time()), px=int(self.ttl * 1000))
        self.lease.beaten(sent, time.monotonic())

    def stop(self, why: str) -> None:
        if self._stopping:
            return
        self._stopping = True
        logger.info("worker %s stopping: %s", self.worker, why)
        deferred_from_coro(self.crawler.engine.close_spider_async(reason="shutdown"))

    def dead_lettered(self, request: Any) -> None:
        """A poison request (handed over too often) is recorded as a failed page in the errors bucket."""
        spider = self.crawler.spider
        logger.error("request handed over %d times, moved to %s: %s", self.crawler.settings.getint("TWEETFORM_MAX_DELIVERIES"),
                     keys.dead_requests(spider.name), request.url)
        self.crawler.stats.inc_value("tweetform/requests/dead_lettered")
        if "tweetform_ctx" not in request.meta or not hasattr(spider, "error_item"):
            return
        fake = Response(request.url, status=0, request=request)
        reason = f"handed over {self.crawler.settings.getint('TWEETFORM_MAX_DELIVERIES')} times: its workers died or stalled"
        item = spider.error_item(fake, "failed", spider.target_of(fake), Outcome("failed", 0, None, reason), None)
        item.failure_counted = True  # queue_reap.lua counted it in the job's progress already
        # the scraper's own entry point for an item that comes from no callback
        deferred_from_coro(self.crawler.engine.scraper.start_itemproc_async(item, response=None))

    # --- jobs --------------------------------------------------------------------------------

    def spider_idle(self, spider: Any) -> None:
        if self._stopping:
            return
        self.seeds_yielded(idle=True)
        self.finish_starts()
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

    def seeds_yielded(self, idle: bool = False) -> None:
        """`scrapy crawl -a …`: once start() is exhausted (every seed scheduled) the hold waits only for the sync
        (:meth:`finish_starts`), not for this process to be idle — it may die long before (the job stayed running)."""
        if self.crawl_hold is not None and (idle or getattr(self.spider, "start_exhausted", False)):
            self.pending_starts.append((self.crawl_hold, "", ""))
            self.crawl_hold = None

    def take_jobs(self, spider: Any, limit: int = 8) -> int:
        """Start up to ``limit`` job messages from this spider's inbox.

        A message is moved (LMOVE) into this worker's processing list, and leaves
        it only once its seeds are queued (:meth:`finish_starts`); the processing
        lists of dead workers go back to the inbox (:meth:`give_back_messages`)."""
        started = 0
        processing = keys.jobs_processing(spider.name, self.worker)
        try:  # indexed before it may hold a message (give_back_messages finds it there)
            self.server.sadd(keys.jobs_processors(spider.name), self.worker)
        except redis.RedisError:
            return 0
        if self.unsure_takes:
            try:
                started += self.start_unknown_messages(spider, processing)
            except redis.RedisError:
                return started
        for _ in range(limit):
            try:
                raw = self.server.lmove(keys.jobs_inbox(spider.name), processing, "LEFT", "RIGHT")
                if raw is None:
                    break
                job = start_job_message(self.crawler, spider, raw, self.worker)
                if job is None:
                    self.server.lrem(processing, 1, raw)
                    continue
            except redis.RedisError:
                self.unsure_takes = True
                break
            self.pending_starts.append((job, processing, raw))
            started += 1
        self.finish_starts()
        return started

    def start_unknown_messages(self, spider: Any, processing: str) -> int:
        """Start the messages of this worker's processing list it does not know it holds (:attr:`unsure_takes`): a
        take whose answer was lost, a start Redis cut short (started again: its hold and seeds are idempotent)."""
        known = [raw for _, where, raw in self.pending_starts if where == processing]
        started = 0
        for raw in self.server.lrange(processing, 0, -1):
            if raw in known:
                known.remove(raw)
                continue
            job = start_job_message(self.crawler, spider, raw, self.worker)
            if job is None:
                self.server.lrem(processing, 1, raw)
                continue
            self.pending_starts.append((job, processing, raw))
            started += 1
        self.unsure_takes = False
        if started:
            logger.info("started %d job message(s) this worker took while Redis was away (the answer lost)", started)
        return started

    def finish_starts(self) -> None:
        """Seeds queued (pushed to Redis): end the holds and acknowledge the messages."""
        scheduler = redis_scheduler(self.crawler)
        if not self.pending_starts or scheduler is None:
            return
        try:
            scheduler.sync()
            if scheduler.queue.unsent:
                return  # Redis away: the next heartbeat tries again
            pipe = self.server.pipeline(transaction=False)
            for job, processing, raw in self.pending_starts:
                self.spider.store.seeded(job, self.worker, processing, raw, client=pipe)
            pipe.execute()
            self.pending_starts.clear()
        except redis.RedisError:
            pass

    def give_back_messages(self) -> int:
        """Job messages taken by workers that died before queuing their seeds go back to
        the inbox (their holds on the jobs end); dead workers leave the workers hash.
        Returns how many silent workers still hold jobs, their holds not ended yet (started
        less than two heartbeat TTLs ago: they may be about to beat for the first time)."""
        processors = keys.jobs_processors(self.spider.name)
        if not self._processors_indexed:  # once: processing lists of an older tweetform join the index
            prefix = keys.jobs_processing(self.spider.name, "")
            found = [k.decode()[len(prefix):] if isinstance(k, bytes) else k[len(prefix):]
                     for k in self.server.scan_iter(match=prefix + "*", count=500)]
            if found:
                self.server.sadd(processors, *found)
            self._processors_indexed = True
        for worker, moved in give_back_dead(self.server, self.spider.name, self.worker).items():
            if moved:
                logger.warning("gave back %d job messages taken by worker %s, which died before queuing them", moved, worker)
        now = time.time()
        waiting = 0
        for worker, raw in self.server.hgetall(keys.workers()).items():
            worker = worker.decode() if isinstance(worker, bytes) else worker
            if worker == self.worker or self.server.exists(keys.heartbeat(worker)):
                continue
            try:
                started = float(json.loads(raw).get("started", now))
            except (ValueError, AttributeError):
                started = 0.0
            if now - started > 2 * self.ttl:
                released = self.spider.store.release_holds(worker)
                if released:
                    logger.warning("ended %d job holds of worker %s, which died while queuing their seeds", released, worker)
                self.server.hdel(keys.workers(), worker)
            elif self.server.exists(keys.worker_holds(worker)):
                waiting += 1
        return waiting

    def nothing_left(self, spider: Any) -> bool:
        try:
            scheduler = redis_scheduler(self.crawler)
            if scheduler is None:
                return False
            # a fresh look at the endpoint queues: one another worker (or a reap) created in the last
            # seconds is work left (a cached list made two workers exit with a cascade's level 1 queued)
            scheduler.queue.endpoint_names(fresh=True)
            return (
                not scheduler.has_pending_requests()
                and scheduler.queue.in_flight_count() == 0
                and self.server.llen(keys.jobs_inbox(spider.name)) == 0
                # a worker that died holding a job (a killed `scrapy crawl -a …`) gets its holds ended once
                # its grace is over: leaving before would leave that job running with nobody to end it
                and self.give_back_messages() == 0
            )
        except redis.RedisError:
            return False
