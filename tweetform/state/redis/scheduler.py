"""The scheduler of distributed mode: scrapy-redis's, with per-job dupe filters,
per-endpoint queues that wait for quota, and in-flight tracking.

* ``enqueue_request``: the fingerprint goes into the job's dupe-filter set and
  the request into its endpoint's queue in one Lua script
  (:mod:`tweetform.distributed.queue`).
* ``next_request``: among endpoints whose quota allows a request now, the first
  queued request moves into the in-flight hash (tagged with this worker).
* ``close``: this worker's unfinished in-flight requests go back to the queue,
  so a stopped worker hands its work to the others.

Redis going away for a while does not crash the worker: requests it could not
push are kept in memory and pushed again, and taking work simply pauses.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import redis
from scrapy import Request
from scrapy.crawler import Crawler
from scrapy_redis.connection import get_redis_from_settings
from scrapy.utils.asyncio import call_later
from scrapy_redis.scheduler import Scheduler as ScrapyRedisScheduler

from tweetform.distributed import keys
from tweetform.distributed.node import worker_id
from tweetform.distributed.queue import InFlightQueue
from tweetform.quota import runtime

logger = logging.getLogger(__name__)
ENDPOINT_REFRESH = 2.0  # seconds between looks for endpoint queues other workers created


def redis_client(settings: Any) -> redis.Redis:
    """scrapy-redis's client from REDIS_URL / REDIS_PARAMS, with retries on connection errors."""
    client = get_redis_from_settings(settings)
    client.connection_pool.connection_kwargs.setdefault("health_check_interval", 10)
    return client


class RedisScheduler(ScrapyRedisScheduler):
    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "RedisScheduler":
        scheduler = cls(server=redis_client(crawler.settings), persist=True)
        scheduler.crawler = crawler
        scheduler.stats = crawler.stats
        return scheduler

    def open(self, spider: Any) -> None:
        self.spider = spider
        self.worker = worker_id(self.crawler)
        self.queue = InFlightQueue(self.server, spider, keys.queue(spider.name, "%s"), worker=self.worker)
        self.fingerprinter = self.crawler.request_fingerprinter
        self.gate = runtime.gate(self.crawler)
        # requests to push: sent together, in one round trip, before this worker marks the
        # request that produced them done (or when Redis is back after an outage)
        self.unsent: list[tuple[tuple[str, str, str, int], str, str]] = []
        self._flush_call: Any = None
        self.known: list[str] = []
        self._known_at = 0.0
        self._turn = 0
        self._redis_down_since: float | None = None
        self._states: dict[str, tuple[str, float]] = {}
        self.crawler._tweetform_scheduler = self  # type: ignore[attr-defined]
        waiting = len(self.queue)
        if waiting:
            logger.info("joining distributed work: %d requests queued for %s", waiting, spider.name)

    def close(self, reason: str) -> None:
        self.gate.close()
        try:
            self.flush()
            handed = self.queue.reap(release_own=True)
            if handed:
                logger.info("handed %d unfinished requests back to the queue", handed)
        except redis.RedisError as exc:
            logger.error("could not hand work back to Redis (%s); other workers will take it when this worker's heartbeat expires", type(exc).__name__)

    # --- pushing ------------------------------------------------------------------------

    def enqueue_request(self, request: Request) -> bool:
        job = (request.meta.get("tweetform_ctx") or {}).get("job", "")
        fingerprint = "" if request.dont_filter or not job else self.fingerprinter.fingerprint(request).hex()
        self.unsent.append((self.queue.prepare(request), fingerprint, keys.dupefilter(self.spider.name, job) if fingerprint else ""))
        if self._flush_call is None:
            self._flush_call = call_later(0, self._flush_soon)
        return True  # a duplicate is counted (dupefilter/filtered) when the batch is pushed

    def _flush_soon(self) -> None:
        self._flush_call = None
        self._flush_unsent()

    def _redis_down(self) -> None:
        if self._redis_down_since is None:
            self._redis_down_since = time.time()
            logger.error("Redis is unreachable: keeping new requests in memory and waiting for it to come back")

    def _flush_unsent(self) -> None:
        if not self.unsent:
            return
        batch = self.unsent[:]
        try:
            pushed = self.queue.push_many(batch)
        except redis.RedisError:
            self._redis_down()
            return
        del self.unsent[: len(batch)]
        new = sum(pushed)
        self.stats.inc_value("scheduler/enqueued/redis", new)
        if len(pushed) - new:
            self.stats.inc_value("dupefilter/filtered", len(pushed) - new)
        if self._redis_down_since is not None:
            logger.info("Redis is back after %.0f s", time.time() - self._redis_down_since)
            self._redis_down_since = None

    # --- taking -------------------------------------------------------------------------

    def _endpoints(self) -> list[str]:
        now = time.time()
        if now - self._known_at > ENDPOINT_REFRESH or not self.known:
            self.known = sorted(set(self.queue.all_endpoints()) | self.queue.endpoints)
            self._known_at = now
        return self.known

    def next_request(self) -> Request | None:
        try:
            return self._next_request()
        except redis.RedisError:
            self._redis_down()
            return None

    def _next_request(self) -> Request | None:
        if self.unsent:
            self._flush_unsent()
        names = self._endpoints()
        if not names:
            return None
        order = names[self._turn % len(names):] + names[: self._turn % len(names)]
        self._turn += 1
        ready = [n for n in order if self.gate.may_send(n)]
        got = self.queue.pop_from(ready)
        if got is None:
            self.gate.sleep_until_quota(names)
            return None
        name, request = got
        state = self.job_state((request.meta.get("tweetform_ctx") or {}).get("job"))
        if state != "running":
            self.set_aside(name, request, state)
            return None
        reservation = self.gate.reserve(name)
        if reservation is None:  # quota went in between (another worker took it): hand it back
            self.enqueue_request(request.replace(dont_filter=True))
            return None
        self.gate.taken(name, request, reservation)
        self.stats.inc_value("scheduler/dequeued/redis")
        return request

    def job_state(self, job_id: str | None) -> str:
        """running, paused or cancelled (looked up at most every 2 s per job)."""
        if not job_id:
            return "running"
        now = time.time()
        cached = self._states.get(job_id)
        if cached is None or now - cached[1] > 2.0:
            raw = self.server.hget(keys.job(job_id), "state")
            state = (raw.decode() if isinstance(raw, bytes) else raw) or "running"
            self._states[job_id] = cached = (state, now)
        return cached[0]

    def set_aside(self, name: str, request: Request, state: str) -> None:
        """A paused job's request is parked until resume; a cancelled job's is dropped."""
        job_id = request.meta["tweetform_ctx"]["job"]
        if state == "paused":
            data = json.dumps({"q": keys.queue(self.spider.name, name), "d": self.queue._encode_request(request)})
            self.server.zadd(keys.parked(job_id), {data: -request.priority})
        self.queue.ack(request)
        self.stats.inc_value(f"tweetform/jobs/{state}_requests")

    def flush(self) -> None:
        """Queue what is waiting to be pushed, then mark finished requests done — in that
        order, so a request never leaves in-flight before the requests it produced are queued."""
        self._flush_unsent()
        if not self.unsent:
            self.queue.flush_acks()

    def ack(self, request: Request) -> None:
        """The request's callback output has been consumed: it is done."""
        self.queue.mark_done(request)
        try:
            self.flush()
        except redis.RedisError:
            logger.warning("could not mark a request done while Redis is away; will do when it is back")

    def has_pending_requests(self) -> bool:
        if self.unsent:
            return True
        try:
            return any(self.server.zcard(keys.queue(self.spider.name, n)) for n in self._endpoints())
        except redis.RedisError:
            return True

    def __len__(self) -> int:
        try:
            return len(self.queue)
        except redis.RedisError:
            return len(self.unsent)
