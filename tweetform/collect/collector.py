"""``scrapy collect``'s loop: read every job's page stream, write the bucket files, acknowledge.

* The pages are written by the bucket pipeline itself
  (:class:`tweetform.pipelines.buckets.BucketPipeline`), the writer a local
  crawl uses: same files, same lines, same ``page_id`` index, so a page
  delivered twice (a collector killed between its write and its ack) is
  written once.
* A batch is acknowledged (``XACK``, then deleted from the stream and taken off
  the job's waiting counts, in one Lua script) only after every file it
  touched, and every directory it created, is ``fsync``'d.
* One collector at a time (:mod:`tweetform.collect.lock`). At start, and after
  Redis was away, it claims every pending entry (``XAUTOCLAIM``): the entries a
  dead collector read but never acknowledged, and its own.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import redis
from scrapy.exceptions import DropItem
from scrapy.settings import Settings
from scrapy.statscollectors import MemoryStatsCollector

from tweetform.collect.lock import CollectorLock
from tweetform.collect.stream import GROUP, item_from, script, waiting
from tweetform.crawler_state import CrawlerState
from tweetform.manifest import write_manifest
from tweetform.pipelines.buckets import BucketPipeline
from tweetform.state.redis import keys

logger = logging.getLogger(__name__)
JOBS_REFRESH = 1.0  # seconds between looks for new jobs' streams
REPORT_EVERY = 10.0  # seconds between progress log lines (when something was written)
CLOSE_IDLE = 60.0  # seconds without a page before the open files are closed (scrapy archive packs only files no writer holds)


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _iso(epoch: str | None) -> str | None:
    if not epoch:
        return None
    try:
        moment = datetime.fromtimestamp(float(epoch), tz=timezone.utc)
    except (ValueError, OverflowError):
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class LockLost(Exception):
    """This collector's lock expired and another collector took it."""


class _WriterHost:
    """What the bucket pipeline needs of a crawler: settings, a stats collector, and the shared
    objects a crawler's tweetform add-on holds (its Redis client)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stats = MemoryStatsCollector(self)  # type: ignore[arg-type]
        self.shared = CrawlerState(self)  # type: ignore[arg-type]

    def get_addon(self, cls: type) -> Any:
        return self.shared if isinstance(self.shared, cls) else None


def open_writer(settings: Settings, output_dir: Path) -> BucketPipeline:
    """The bucket pipeline a local crawl uses, writing into ``output_dir``."""
    own = settings.copy()
    own.set("TWEETFORM_OUTPUT_DIR", str(output_dir), "cmdline")
    return BucketPipeline.from_crawler(_WriterHost(own))  # type: ignore[arg-type]


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Collector:
    def __init__(self, settings: Settings, server: Any, output_dir: Path, *, batch: int = 32, block: float = 1.0,
                 exit_when_idle: bool = False) -> None:
        self.server = server
        self.root = output_dir.resolve()
        self.batch = batch
        self.block_ms = max(1, int(block * 1000))
        self.exit_when_idle = exit_when_idle
        self.consumer = f"{socket.gethostname()}-{os.getpid()}"
        ttl = settings.getfloat("TWEETFORM_COLLECT_LOCK_TTL")
        self.lock = CollectorLock(server, self.root, ttl)
        self.refresh_every = ttl / 3
        self.writer = open_writer(settings, self.root)
        self.writer.fence = self.fence
        self.stats = self.writer.stats
        self._ack = script(server, "page_ack")
        self.streams: dict[str, str] = {}  # stream key -> job id
        self._jobs_at = 0.0
        self._locked_at = 0.0
        self._reported_at = time.monotonic()
        self._reported = (0, 0)
        self._known_files: set[Path] = set()  # files whose directory entry is durable
        self._wrote_at = time.monotonic()
        self._recorded: set[str] = set()  # jobs whose manifest this collector wrote
        # jobs whose last waiting page it wrote while their state was not final yet: a worker's last acknowledgement
        # may come after that page's (the job is done then, with no page left to make handle() record its end)
        self._ending: set[str] = set()
        self.stop = threading.Event()

    # --- life -------------------------------------------------------------------------------

    def run(self) -> None:
        """Collect until stopped (or idle, with ``exit_when_idle``). Raises LockHeld, LockLost."""
        self.lock.acquire()
        self._locked_at = time.monotonic()
        if self.lock.took_over:
            logger.warning("took over the lock of collector pid %s (no longer running)", self.lock.took_over.get("pid"))
        logger.info("collecting pages into %s", self.root)
        try:
            self._loop()
        finally:
            self.writer.close_spider()
            try:
                self.lock.release()
            except redis.RedisError:
                pass  # it expires
            self.report(final=True)

    def _loop(self) -> None:
        reclaim = True
        down_since: float | None = None
        while not self.stop.is_set():
            try:
                self.keep_lock()
                self.refresh_jobs(force=reclaim)
                if reclaim:
                    self.reclaim()
                    reclaim = False
                got = self.read()
                if got:
                    self.handle(got)
                    self._wrote_at = time.monotonic()
                else:
                    self.record_ended()
                    if self.exit_when_idle and self.idle():
                        logger.info("nothing waits and no worker is alive: done")
                        return
                    if self.writer.files and time.monotonic() - self._wrote_at > CLOSE_IDLE:
                        self.writer.close_spider()  # reopened (and read back) with the next page
                if down_since is not None:
                    logger.info("Redis is back after %.0f s", time.monotonic() - down_since)
                    down_since = None
            except redis.RedisError as exc:
                if down_since is None:
                    down_since = time.monotonic()
                    logger.error("Redis is unreachable (%s): pages wait there; retrying", type(exc).__name__)
                reclaim = True  # entries read or written meanwhile may be pending, unacknowledged
                self.stop.wait(1.0)
            self.report()
        try:  # stopped (SIGTERM): a job that ended meanwhile still gets its manifest
            self.record_ended()
        except redis.RedisError:
            pass

    def record_ended(self) -> None:
        """The manifest of each job in ``_ending`` whose state is final now and that has no page waiting."""
        for job in list(self._ending):
            if waiting(self.server, job)[0]:
                self._ending.discard(job)  # more pages came: handle() records its end after them
            else:
                self.record_end(job)

    def keep_lock(self) -> None:
        if time.monotonic() - self._locked_at < self.refresh_every:
            return
        if not self.lock.refresh():
            raise LockLost("this collector's lock expired and another collector holds it now: stopped writing")
        self._locked_at = time.monotonic()

    # --- streams ------------------------------------------------------------------------------

    def refresh_jobs(self, force: bool = False) -> None:
        """Every job with a page stream, each with the collectors' consumer group."""
        now = time.monotonic()
        if not force and now - self._jobs_at < JOBS_REFRESH:
            return
        self._jobs_at = now
        for raw in self.server.smembers(keys.collect_jobs()):
            job = raw.decode() if isinstance(raw, bytes) else raw
            stream = keys.page_stream(job)
            if stream in self.streams and not force:
                continue
            try:
                self.server.xgroup_create(stream, GROUP, id="0")
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):  # no stream: the job's keys were purged
                    self.server.srem(keys.collect_jobs(), job)
                    self.streams.pop(stream, None)
                    continue
            self.streams[stream] = job

    def reclaim(self) -> None:
        """Take over and write every pending entry (read earlier, never acknowledged)."""
        for stream, job in list(self.streams.items()):
            start = "0-0"
            while True:
                answer = self.server.xautoclaim(stream, GROUP, self.consumer, min_idle_time=0, start_id=start, count=self.batch)
                start, entries = answer[0], answer[1]
                entries = [(i, f) for i, f in entries if f]
                if entries:
                    logger.info("writing %d pages of job %s read but not acknowledged by a collector before", len(entries), job)
                    self.handle([(stream, entries)])
                if start in (b"0-0", "0-0"):
                    break

    def read(self) -> list[tuple[str, list[tuple[bytes, dict[bytes, bytes]]]]]:
        if not self.streams:
            self.stop.wait(self.block_ms / 1000)
            return []
        try:
            answer = self.server.xreadgroup(GROUP, self.consumer, {s: ">" for s in self.streams}, count=self.batch, block=self.block_ms)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self.refresh_jobs(force=True)  # a stream was purged (or recreated without its group)
            return []
        return [(s.decode() if isinstance(s, bytes) else s, entries) for s, entries in answer or []]

    # --- writing ------------------------------------------------------------------------------

    def handle(self, batch: list[tuple[str, list[tuple[bytes, dict[bytes, bytes]]]]]) -> None:
        """Write a batch, make it durable, then acknowledge it."""
        touched: dict[Path, Any] = {}
        acks: dict[str, list[Any]] = defaultdict(list)
        for stream, entries in batch:
            for entry_id, fields in entries:
                self.write(fields, touched)
                acks[stream] += [entry_id, int(fields.get(b"n") or 0)]
        self.make_durable(touched)
        for stream, args in acks.items():
            job = self.streams.get(stream, "")
            if self._ack(keys=[stream, keys.pages_waiting(job), keys.job(job), keys.collect_lock()], args=[GROUP, self.lock.value, job, keys.job_templates(), *args]) == -1:
                raise LockLost("this collector's lock expired and another collector holds it now: stopped writing")
            if not waiting(self.server, job)[0]:
                self.record_end(job)
        self.stats.inc_value("tweetform/collect/entries", sum(len(a) // 2 for a in acks.values()))

    def fence(self) -> None:
        """The writer asks before opening a file and right before each write: frozen past the TTL with
        a batch in hand, not one page of it is written."""
        if not self.lock.confirm():
            raise LockLost("this collector's lock expired and another collector holds it now: stopped writing")

    def write(self, fields: dict[bytes, bytes], touched: dict[Path, Any]) -> None:
        try:
            item = item_from(fields)
            self.writer.process_item(item)
        except DropItem as exc:
            logger.warning("page not written: %s", exc)
            self.stats.inc_value("tweetform/collect/refused")
            return
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("a malformed entry in a page stream was dropped (%s)", type(exc).__name__)
            self.stats.inc_value("tweetform/collect/refused")
            return
        prov = item.provenance
        handle = self.writer.files.get((prov["bucket"], str(prov["key"])))
        if handle is not None:
            touched[handle.path] = handle

    def make_durable(self, touched: dict[Path, Any]) -> None:
        """fsync every file written in the batch, and the directories of files new to this
        collector (a new file's name, a new bucket's folder, must survive a crash too)."""
        open_now = {id(h) for h in self.writer.files.values()}
        dirs: set[Path] = set()
        for path, handle in touched.items():
            if id(handle) in open_now:
                os.fsync(handle.fd)
            else:  # closed meanwhile (the writer keeps a bounded number open)
                fsync_path(path)
            if path not in self._known_files:
                dirs |= {path.parent, path.parent.parent}
        for folder in dirs:
            fsync_path(folder)
        self._known_files |= touched.keys()

    def record_end(self, job: str) -> None:
        """A job that ended with its last page written: its manifest, ``_jobs/<job>.json``, beside the data."""
        state, args, created, finished = (_text(v) for v in self.server.hmget(keys.job(job), "state", "args", "created", "finished_at"))
        if state in ("running", "paused") and job not in self._recorded:
            self._ending.add(job)  # its end is recorded once its state is final (record_ended)
        if state in (None, "running", "paused") or job in self._recorded:
            if state is None:
                self._ending.discard(job)  # purged
            return
        progress = {_text(k): int(v) for k, v in self.server.hgetall(keys.job_progress(job)).items()}
        try:
            arguments = json.loads(args or "{}")
        except ValueError:
            arguments = {}
        self.fence()  # a write like the pages': a collector frozen since its last acknowledgement may have lost the lock
        try:
            write_manifest(self.root, job, spider=arguments.get("spider"), arguments=arguments, bucket=arguments.get("bucket"),
                           started=_iso(created), ended=_iso(finished), state=state, pages=progress.get("pages", 0),
                           errors=progress.get("errors", 0), failed_pages=progress.get("failed", 0))
        except OSError as exc:
            logger.error("could not write the manifest of job %s: %s", job, exc)
            return
        self._recorded.add(job)
        self._ending.discard(job)
        logger.info("job %s is %s: its last page is written", job, state)

    # --- idle and reporting -------------------------------------------------------------------

    def idle(self) -> bool:
        """No page waits for any job and no worker is alive (nothing more can come)."""
        if any(waiting(self.server, job)[0] for job in self.streams.values()):
            return False
        workers = [w.decode() if isinstance(w, bytes) else w for w in self.server.hkeys(keys.workers())]  # not a keyspace SCAN
        return not workers or not self.server.exists(*(keys.heartbeat(w) for w in workers))

    def report(self, final: bool = False) -> None:
        now = time.monotonic()
        counts = (int(self.stats.get_value("tweetform/pages/written", 0)), int(self.stats.get_value("tweetform/pages/duplicate_skipped", 0)))
        if not final and (counts == self._reported or now - self._reported_at < REPORT_EVERY):
            return
        self._reported, self._reported_at = counts, now
        logger.info("%s %d pages written, %d delivered again and skipped", "collected:" if final else "collecting:", *counts)
