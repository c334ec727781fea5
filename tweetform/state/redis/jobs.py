"""Jobs in Redis: messages, their validation, tweetf0rm's commands, and shared job state.

A job message is JSON on a spider's inbox (``keys.jobs_inbox``) with the spider
arguments of SPEC.md plus a job id: ``{"spider": "friends", "job": "j1",
"user_id": "12", "depth": 2}``. A message that cannot be run — bad JSON, an
unknown spider or command, a bad id or bucket — goes to the dead-letter list
with its reason, in one log line, and the worker goes on.

:class:`RedisJobStore` keeps what a job must remember (its arguments, the users
it expanded, the network levels of ``max_users`` crawls) in Redis, so every
worker shares it. Each step is idempotent: a request fetched twice after a
worker died claims the same users again without losing or doubling any.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from scrapy.crawler import Crawler

from tweetform import seed_urls
from tweetform.job import ArgumentError, JobArgs, check_message_size, decode_message, message_arguments
from tweetform.state.base import DONE, GONE, JobStatus, JobStore, last_complete_level
from tweetform.state.redis import connection, keys, migrate, scripts
from tweetform.state.redis.seen import KnownClaims, SeenUsers

logger = logging.getLogger(__name__)
PREVIOUS_MARKS = b"1"  # the claims layout's marks of every job the previous release seeded (now: its birth)
ENDED_TTL = "expiring"  # the job hash's field control.expire_ended sets to the TTL it gave an ended job's keys

LEGACY_SPIDERS = {
    "CRAWL_FRIENDS": "friends",
    "CRAWL_FOLLOWERS": "followers",
    "CRAWL_USER_TIMELINE": "timeline",
    "CRAWL_TWEET": "tweets",
    "SEARCH": "search",
    "BATCH_CRAWL_FRIENDS": "friends",
    "BATCH_CRAWL_FOLLOWERS": "followers",
    "BATCH_CRAWL_USER_TIMELINE": "timeline",
    "BATCH_CRAWL_TWEET": "tweets",
    "GET_UIDS_FROM_SCREEN_NAMES": "users",
    "GET_USERS_FROM_IDS": "users",
}


def from_legacy(command: dict[str, Any]) -> dict[str, Any]:
    """tweetf0rm's command JSON as a tweetform job message (raises ArgumentError)."""
    cmd = command.get("cmd")
    if cmd not in LEGACY_SPIDERS:
        raise ArgumentError(f"unknown tweetf0rm command {cmd!r}; known: {', '.join(sorted(LEGACY_SPIDERS))}")
    spider = LEGACY_SPIDERS[cmd]
    out: dict[str, Any] = {"spider": spider}
    for name in ("bucket", "depth", "data_type", "query", "lang", "geocode", "job"):
        if command.get(name) not in (None, "") or (name == "bucket" and command.get(name) == ""):  # "": refused
            out[name] = command[name]
    if cmd.startswith("BATCH_"):
        ids = command.get("user_ids") or command.get("tweet_ids") or command.get("ids")
        if not isinstance(ids, list) or not ids:
            raise ArgumentError(f"{cmd} needs a JSON list of ids")
        out["tweet_id" if spider == "tweets" else "user_id"] = ",".join(str(i) for i in ids)
    elif cmd == "CRAWL_TWEET":
        out["tweet_id"] = str(command.get("tweet_id") or command.get("id") or "")
    elif cmd == "GET_UIDS_FROM_SCREEN_NAMES":
        names = command.get("screen_names") or []
        out["screen_name"] = ",".join(names) if isinstance(names, list) else str(names)
    elif cmd == "GET_USERS_FROM_IDS":
        ids = command.get("user_ids") or []
        out["user_id"] = ",".join(str(i) for i in ids) if isinstance(ids, list) else str(ids)
    elif spider != "search":
        out["user_id"] = str(command.get("user_id") or "")
    if spider == "search" and "query" not in out:
        raise ArgumentError("SEARCH needs a query")
    return out


def parse_message(raw: bytes | str, spider_cls: Any, default_api: str) -> JobArgs:
    """A job message as validated arguments (raises ArgumentError with the reason): JSON arguments,
    a tweetf0rm command, or a seed URL, plain or as scrapy-redis's ``{"url": …, "meta": …}`` (seed_urls)."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    if seed_urls.is_seed_url(text):
        check_message_size(raw)
        message: dict[str, Any] = seed_urls.job_message(text, spider_cls.name)
    else:
        message = decode_message(raw)  # size, JSON, an object
    if "url" in message and "cmd" not in message and "spider" not in message:
        message = seed_urls.scrapy_redis_message(message, spider_cls.name)
    elif "cmd" in message:
        message_arguments(message)  # each tweetf0rm field's JSON type, by name
        message = from_legacy(message)
    spider = message.pop("spider", spider_cls.name)
    if spider != spider_cls.name:
        raise ArgumentError(f"message for spider {str(spider)[:40]!r} found in {spider_cls.name!r}'s inbox")
    return spider_cls.parse_arguments(message_arguments(message), default_api)


def dead_letter(server: Any, raw: bytes | str, reason: str, cap: int = 10000) -> None:
    """A refused message, with its reason, at the end of the dead-letter list (the oldest beyond ``cap`` go)."""
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    pipe = server.pipeline()
    pipe.rpush(keys.dead_letter(), json.dumps({"message": text[:10000], "reason": reason, "at": time.time()}))
    pipe.ltrim(keys.dead_letter(), -cap, -1)
    pipe.execute()
    logger.error("job message refused (%s); moved to %s", reason, keys.dead_letter())


def start_job_message(crawler: Crawler, spider: Any, raw: bytes | str, worker: str) -> str | None:
    """Validate and start one job message: its job id, or None when refused (dead-lettered).

    The worker holds the job (``keys.job_starting``) until its seeds are queued,
    so the job is not taken for done in between."""
    cap = crawler.settings.getint("TWEETFORM_DEAD_LETTER_MAX")
    try:
        job = parse_message(raw, type(spider), str(crawler.settings.get("TWEETFORM_API_VERSION")))
    except Exception as exc:  # any message that cannot be read must not stop the worker (it would get it back forever)
        dead_letter(spider.store.server, raw, _reason(exc), cap)
        return None
    spider.store.hold(job.job, worker)
    try:
        requests = list(spider.start_job(job))
    except Exception as exc:
        if connection.redis_away(exc):
            raise
        spider.store.seeded(job.job, worker)  # no seeds will come: the hold ends
        dead_letter(spider.store.server, raw, _reason(exc), cap)
        return None
    for request in requests:
        crawler.engine.crawl(request)
    return job.job


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ArgumentError):
        return str(exc)
    return f"cannot be started: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}".rstrip(": ")


class RedisJobStore(JobStore):
    """Job state shared by every worker through Redis."""

    def __init__(self, server: Any) -> None:
        super().__init__()
        self.server = server
        self._seen = SeenUsers(server)  # compact claims: ~20 bytes per user (seen.py)
        self.known_claims = KnownClaims()  # users this worker saw claimed, per job (claimed at push: seen.py)
        self._at_push: dict[str, bytes | None] = {}  # job -> its layout's marks when it claims at push, None: it does not
        self._claims_watch = connection.ConnectionWatch(server)  # a new connection: known_claims dropped (not_known_claimed)
        self._set_state = scripts.load(server, "job_state")
        self._started = scripts.load(server, "job_started")
        self._release_holds = scripts.load(server, "release_holds")
        self._opened: set[str] = set()  # jobs this process has met (their older SETs folded: migrate.py)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "RedisJobStore":
        return cls(connection.for_crawler(crawler))

    def save(self, job: JobArgs) -> None:
        self.jobs[job.job] = job
        pipe = self.server.pipeline()
        pipe.hsetnx(keys.job(job.job), "args", json.dumps(job.as_message()))
        pipe.hsetnx(keys.job(job.job), "state", "running")
        pipe.hsetnx(keys.job(job.job), "created", time.time())
        # the redis-server process the job began under: after a restart (data maybe older than what it answered) none
        # of its requests is a first delivery (lua/queue_pop.lua)
        pipe.hsetnx(keys.job(job.job), "run", connection.current_run(self.server))
        pipe.zadd(keys.jobs(), {job.job: time.time()}, nx=True)
        pipe.execute()
        self._open(job.job, job.spider)

    def _open(self, job_id: str, spider: str) -> None:
        """The first time this process meets a job: an older tweetform's SETs of it become compact sets
        (a job continued across the upgrade fetches and writes nothing twice)."""
        if job_id not in self._opened:
            migrate.open_job(self.server, job_id, spider)
            self._opened.add(job_id)

    def load(self, job_id: str) -> JobArgs | None:
        job = self.jobs.get(job_id)
        if job is None:
            raw = self.server.hget(keys.job(job_id), "args")
            if raw is None:
                return None
            job = self.jobs[job_id] = JobArgs(**json.loads(raw))
            self._open(job_id, job.spider)
        return job

    def state(self, job_id: str) -> str:
        raw = self.server.hget(keys.job(job_id), "state")
        return raw.decode() if isinstance(raw, bytes) else (raw or GONE)

    def set_state(self, job_id: str, state: str) -> None:
        """Pause, resume (parked requests back in their queues), cancel, or stop at the budget, in one script."""
        self.change_state(job_id, state)

    def change_state(self, job_id: str, state: str) -> bool:
        """:meth:`set_state`; False when the job is unknown."""
        return bool(self._set_state(keys=[keys.job(job_id)], args=[state, job_id, keys.job_templates()]))

    def hold(self, job_id: str, worker: str) -> None:
        """This worker is queuing the job's seeds: the job is not done before :meth:`seeded`."""
        pipe = self.server.pipeline()
        pipe.sadd(keys.job_starting(job_id), worker)
        pipe.sadd(keys.worker_holds(worker), job_id)  # so the hold ends if this worker dies (:meth:`release_holds`)
        pipe.hget(keys.job(job_id), ENDED_TTL)
        *_, ttl = pipe.execute()
        self._expire_late(ttl, keys.job_starting(job_id))

    def seeded(self, job_id: str, worker: str, processing: str = "", message: bytes | str = "", client: Any = None) -> None:
        """The job's seeds are queued: the hold ends and the job message (if any) leaves ``processing``."""
        self._started(keys=[keys.job(job_id), processing, keys.worker_holds(worker)], args=[worker, message, job_id, keys.job_templates()],
                      client=client)

    def release_holds(self, worker: str) -> int:
        """A dead worker's holds end (its jobs may be done now): how many it had."""
        return int(self._release_holds(keys=[keys.worker_holds(worker)], args=[keys.job_templates(), worker]))

    def status(self, job_id: str) -> JobStatus:
        pipe = self.server.pipeline()
        pipe.hgetall(keys.job(job_id))
        pipe.hgetall(keys.job_progress(job_id))
        meta, progress = pipe.execute()
        meta = {_s(k): _s(v) for k, v in meta.items()}
        if not meta:
            return JobStatus(job_id, GONE)
        return JobStatus(job_id, meta.get("state", GONE), _float(meta.get("created")), _float(meta.get("finished_at")),
                         {_s(k): int(v) for k, v in progress.items()})

    def claim_users(self, job: JobArgs, uids: list[int], level: int, claimer: str = "") -> list[int]:
        if not uids:
            return []
        # levels are recorded only under a cap: a levelled job without one has a cap no job reaches
        cap = job.claim_cap if job.claim_cap is not None else (1 << 62 if job.by_levels else None)
        return self._seen.claim(job.job, uids, claimer or f"level:{level}", cap,
                                order=(keys.level_users(job.job, level), keys.level_sequence(job.job, level)))

    def claims_at_push(self, job: JobArgs) -> bool:
        """A job without max_users whose claims layout marks queued first pages (this code's: its seeds' claim
        made it): the push of a first page claims its user (``lua/queue_push.lua`` "k"), in the step that queues
        it, instead of seen_claim.lua before it (each id looked up once, not twice). An older tweetform's job (its
        layout without ``marks``, or the previous release's ``marks`` 1: every job it seeded has that value, so a job
        purged and seeded again by it under the same id could not be told from the first by KnownClaims) goes on as
        it began; a job with no claim yet claims its seeds first. Asked of Redis once per job (the answer then stays:
        the marks stay while the job lives)."""
        if job.by_levels:
            return False
        if job.job not in self._at_push:
            marks, lvl = self.server.hmget(keys.expanded(job.job), "marks", "lvl")
            if marks is None and lvl is None:
                return False  # no claim yet
            self._at_push[job.job] = None if marks == PREVIOUS_MARKS else marks
        marks = self._at_push[job.job]
        if marks is None:
            return False
        self.known_claims.watch(job.job, marks)
        return True

    def pushes_claim(self, job_id: str) -> bool:
        """Whether this worker has found that the job claims at push (:meth:`claims_at_push`), without Redis: the
        queue pushes the job's first pages with dedupe "k" then, as the spider built them for it."""
        return self._at_push.get(job_id) is not None

    def not_known_claimed(self, job: JobArgs, uids: list[Any]) -> list[Any]:
        if self._claims_watch.changed():
            # a new connection: Redis may have restarted with older data, its claims learnt before gone; the page that
            # found them is in flight again, and fetched again after this worker's next command (a reclaim, a reap)
            self.known_claims.clear()
        return self.known_claims.unknown(job.job, uids)

    def expanded_count(self, job: JobArgs) -> int:
        return self._seen.count(job.job)

    def requests_opened(self, job: JobArgs, level: int, pages: list[str]) -> None:
        if pages:
            pipe = self.server.pipeline()
            pipe.sadd(keys.level_opened(job.job, level), *pages)
            pipe.hget(keys.job(job.job), ENDED_TTL)
            self._expire_late(pipe.execute()[-1], keys.level_opened(job.job, level))

    def record_found(self, job: JobArgs, level: int, source: int, page_no: int, ids: list[int]) -> None:
        pipe = self.server.pipeline()
        pipe.hset(keys.level_found(job.job, level), f"{source}:{page_no}", json.dumps(ids))
        pipe.hget(keys.job(job.job), ENDED_TTL)
        self._expire_late(pipe.execute()[-1], keys.level_found(job.job, level))

    def request_done(self, job: JobArgs, level: int, page: str = "") -> list[int] | None:
        pipe = self.server.pipeline()
        pipe.sadd(keys.level_done(job.job, level), page)
        pipe.scard(keys.level_opened(job.job, level))
        pipe.scard(keys.level_done(job.job, level))
        pipe.hget(keys.job(job.job), ENDED_TTL)
        _, opened, done, ttl = pipe.execute()
        self._expire_late(ttl, keys.level_done(job.job, level))
        if done < opened:
            return None
        users = [int(u) for u in self.server.zrange(keys.level_users(job.job, level), 0, -1)]
        found = {k.decode() if isinstance(k, bytes) else k: json.loads(v) for k, v in self.server.hgetall(keys.level_found(job.job, level)).items()}
        ordered: list[int] = []
        for uid in users:
            pages = sorted((int(k.split(":")[1]), ids) for k, ids in found.items() if k.split(":")[0] == str(uid))
            for _, ids in pages:
                ordered.extend(ids)
        return ordered

    def _expire_late(self, ttl: Any, *created: str) -> None:
        """Keys a job's late page or hold creates after the job ended (``control.expire_ended`` marked its hash
        with the TTL it gave the job's keys) get that TTL too, instead of outliving the job."""
        if ttl is not None:
            pipe = self.server.pipeline(transaction=False)
            for key in created:
                pipe.expire(key, int(ttl), nx=True)
            pipe.execute()

    def last_complete_level(self, job: JobArgs) -> int | None:
        """The job's deepest complete BFS level, from the state its workers share, whichever did the work:
        a level is pending while a request of it is queued, in flight or parked (``pending/<depth>`` counters
        of the progress hash, kept by the queue's push and ack scripts: the local queue's rule), whether the
        job runs, is paused, cancelled or stopped at its budget; a job done has nothing pending; a
        ``max_users`` job's levels are complete when every request opened at them is done (``level_opened`` /
        ``level_done``), and the level the cap cut is not; a level with a page failed for good is not
        (``failed/<depth>`` counters). A job whose seeds an older tweetform queued (no ``pending/1``), or with
        pages waiting for ``scrapy collect``, counts no level complete before it is done."""
        levels = range(1, job.depth + 1)
        pipe = self.server.pipeline(transaction=False)
        pipe.hget(keys.job(job.job), "state")
        pipe.hgetall(keys.job_progress(job.job))
        pipe.hget(keys.expanded(job.job), "n")
        pipe.scard(keys.job_starting(job.job))
        pipe.hget(keys.pages_waiting(job.job), "pages")
        for level in levels:
            pipe.scard(keys.level_opened(job.job, level))
            pipe.scard(keys.level_done(job.job, level))
            pipe.zcard(keys.level_users(job.job, level))
        state, progress, claimed, seeding, waiting, *counts = pipe.execute()
        done = _s(state or "") == DONE
        counters = {_s(k): int(v) for k, v in progress.items()}
        failed = _levels(counters, "failed/")
        pending = _levels(counters, "pending/") if not done else set()
        counted = "pending/1" in counters  # its seeds were counted, so was every request after them
        if seeding and not done:  # a worker is still queuing the seeds: level 1 is not all queued yet
            pending.add(1)
        if int(waiting or 0) and not done:  # collect mode: an acknowledged page, of any level, may not be in a file yet
            pending.add(1)
        cut = None
        if job.by_levels:
            for level, (opened, finished, users) in zip(levels, zip(counts[0::3], counts[1::3], counts[2::3])):
                if finished < opened or (not opened and not done):
                    pending.add(level)
                if users:
                    deepest = level
            if job.claim_cap is not None and int(claimed or 0) >= job.claim_cap and any(counts[2::3]):
                cut = deepest
        elif not done and not counted:
            pending.add(1)
        return last_complete_level(pending, failed, job.depth, cut)

    def progress(self, job_id: str, **counts: int) -> None:
        pipe = self.server.pipeline()
        for name, n in counts.items():
            pipe.hincrby(keys.job_progress(job_id), name, n)
        pipe.execute()


def job_last_complete_level(server: Any, job_id: str) -> int | None:
    """``scrapy status`` and ``scrapy wait``: a network job's deepest complete level (None for other jobs)."""
    raw = server.hget(keys.job(job_id), "args")  # read as it is: a status look folds no older sets (migrate.py)
    job = JobArgs(**json.loads(raw)) if raw else None
    if job is None or job.spider not in ("friends", "followers") or not job.depth:
        return None
    return RedisJobStore(server).last_complete_level(job)


def _levels(counters: dict[str, int], prefix: str) -> set[int]:
    """The levels whose ``<prefix><level>`` counter is above zero."""
    return {int(k[len(prefix):]) for k, v in counters.items() if k.startswith(prefix) and k[len(prefix):].isdigit() and v > 0}


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _float(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None
