"""Where a page is written: ``<output>/<bucket>/<key>.jsonl``, one page per line.

A page's identity is its ``page_id``, a hash of job, bucket, key and request URL
(:func:`tweetform.items.page_id`): within one job a page is written once, however
often it is fetched again (retries, a crash, a resumed job); another job
crawling the same URLs writes its own pages.

Each :class:`BucketFile` is the one writer of its file in this process and knows
what the file holds: the page ids in it, read from the file itself when it is
opened (a torn last line from a killed writer is cut off then). A page is
checked against that index and appended in one ``write`` on an ``O_APPEND``
descriptor under an exclusive ``lockf`` lock; a writer in another process that
appended meanwhile is noticed (the file grew past what this writer knows) and
its lines are indexed before the check, so two processes on one host sharing an
output directory cannot write one page twice either.

While a file is open its writer holds a shared ``flock`` on it: ``scrapy archive``
packs only files it can lock exclusively (no writer holds them), so it never
removes a file a crawl still appends to (:mod:`tweetform.export.archive`). A file
opened again after its earlier copy was archived also knows the pages of that
copy: archives made since the job started (its manifest's ``started``) are read
once per crawl, so a resumed job does not write an archived page again.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import time
from collections import OrderedDict
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

import redis
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem

from tweetform import state
from tweetform.config import uses_redis
from tweetform.state.redis import compact, keys, migrate, scripts
from tweetform.state.redis.connection import connects
from tweetform.state.redis.node import lease_of
from tweetform.state.redis.outbox import for_crawler as outbox_of
from tweetform.export.files import ARCHIVE, GZIP, JOBS_DIR, PLAIN, gzip_member, iter_archive_lines, iter_members
from tweetform.items import PROVENANCE, PageItem
from tweetform.manifest import read_manifest

logger = logging.getLogger(__name__)
SAFE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
SAFE_KEY = re.compile(r"^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)*$")  # ":" for Bluesky DIDs (did:plc:…), never a path
#: the byte range writers lock (lockf) around each append: far past any data, so readers are never blocked
WRITE_LOCK_START = 1 << 62


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def line_for(item: PageItem) -> bytes:
    """The JSONL line of an item: the raw body with provenance spliced in when we have it."""
    prov = dumps(item[PROVENANCE])
    raw = getattr(item, "raw", None)
    if raw and b"\n" not in raw:
        body = raw.rstrip()
        if body.endswith(b"}"):
            inner = body[:-1].rstrip()
            sep = b"" if inner.endswith(b"{") else b","
            return inner + sep + b'"' + PROVENANCE.encode() + b'":' + prov + b"}\n"
    return dumps(dict(item)) + b"\n"


def identity(page: dict[str, Any]) -> tuple[str, str] | None:
    """``(job, page_id)`` of a written page, or None for a line without provenance."""
    prov = page.get(PROVENANCE)
    if not isinstance(prov, dict) or not prov.get("page_id"):
        return None
    return str(prov.get("job") or ""), str(prov["page_id"])


def identities(lines: Iterable[bytes]) -> Iterable[tuple[str, str]]:
    for line in lines:
        try:
            found = identity(json.loads(line))
        except (ValueError, TypeError, AttributeError):
            continue
        if found is not None:
            yield found


def key_of(member: str) -> str | None:
    """The key of an archived bucket file (``friend_ids/12.jsonl.gz`` → ``12``)."""
    name = member.rsplit("/", 1)[-1]
    for suffix in (GZIP, PLAIN):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return None


def _digest(pid: str) -> bytes:
    """A page id as Redis keeps it: its 20 hex digits as 10 bytes."""
    try:
        return bytes.fromhex(pid)
    except ValueError:
        return pid.encode()


def hold_shared(fd: int) -> None:
    """The writer's mark on an open file (see module doc); waits while an archiver packs it."""
    fcntl.flock(fd, fcntl.LOCK_SH)


class BucketFile:
    """The one writer of a ``.jsonl`` (or ``.jsonl.gz``) file and the pages already in it.

    ``compress``: a ``.jsonl.gz`` file, each line written as its own gzip member
    (see :mod:`tweetform.export.files`), so appends and crash repair work alike.
    ``seen`` holds ``(job, page_id)`` of every page in the file."""

    def __init__(self, path: Path, compress: bool = False) -> None:
        self.path = path
        self.compress = compress
        path.parent.mkdir(parents=True, exist_ok=True)
        self.seen: set[tuple[str, str]] = set()
        self.fd = self._open_held()
        self.end = 0  # how far this writer has read the file: everything before is in ``seen``
        with self._write_lock():
            self._catch_up()

    def _open_held(self) -> int:
        """Open and mark the file; again if an archiver removed it before the mark was taken."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            hold_shared(fd)
            try:
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    return fd
            except FileNotFoundError:
                pass
            os.close(fd)  # archived meanwhile: the name now means a new file

    def _write_lock(self) -> "_LockF":
        return _LockF(self.fd)

    def _catch_up(self) -> None:
        """Index what was appended since ``end`` (by this writer's earlier run, or another
        process); a torn tail — a writer killed mid-line — is cut off first."""
        size = os.fstat(self.fd).st_size
        if size == self.end:
            return
        whole_end, lines = self._read_from(self.end, size)
        if whole_end < size:
            os.ftruncate(self.fd, whole_end)
            logger.warning("cut a partial last line from %s", self.path)
        self._index(lines)
        self.end = whole_end

    def _read_from(self, start: int, size: int) -> tuple[int, list[bytes]]:
        """``(end of the last whole line, whole lines)`` of the file between start and size."""
        # through our own descriptor: closing another one would drop this process's lockf lock
        if self.compress:
            end, lines = start, []
            for member_end, payload in iter_members(_FdReader(self.fd, start, size)):
                end = start + member_end
                lines.append(payload)
            return end, lines
        data = _FdReader(self.fd, start, size).read(size - start)
        cut = data.rfind(b"\n") + 1
        return start + cut, data[:cut].splitlines()

    def _index(self, lines: Iterable[bytes]) -> None:
        self.seen.update(identities(lines))

    def write_once(self, ident: tuple[str, str], line: bytes) -> bool:
        """Append a page unless the file holds it already; True when it was written."""
        if ident in self.seen:
            return False
        with self._write_lock():
            self._catch_up()
            if ident in self.seen:
                return False
            data = gzip_member(line) if self.compress else line
            view = memoryview(data)
            while view:
                written = os.write(self.fd, view)
                view = view[written:]
            self.end += len(data)
            self.seen.add(ident)
        return True

    def close(self) -> None:
        os.close(self.fd)  # the flock goes with it


class _FdReader:
    """``read()`` over a byte range of a descriptor, by ``pread`` (the file offset stays put)."""

    def __init__(self, fd: int, start: int, end: int) -> None:
        self.fd, self.pos, self.stop = fd, start, end

    def read(self, n: int = -1) -> bytes:
        n = self.stop - self.pos if n < 0 else min(n, self.stop - self.pos)
        chunks = []
        while n > 0:
            chunk = os.pread(self.fd, n, self.pos)
            if not chunk:
                break
            chunks.append(chunk)
            self.pos += len(chunk)
            n -= len(chunk)
        return b"".join(chunks)


class _LockF:
    """``lockf`` on a byte range far past the data: appends from several processes in turn."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __enter__(self) -> None:
        fcntl.lockf(self.fd, fcntl.LOCK_EX, 1, WRITE_LOCK_START, os.SEEK_SET)

    def __exit__(self, *exc: Any) -> None:
        fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, WRITE_LOCK_START, os.SEEK_SET)


class BucketPipeline:
    """Writes every page and error record to its bucket file, each once per job."""

    MAX_OPEN = 256
    ARCHIVE_RELIST = 10.0

    def __init__(self, output_dir: str, crawler: Crawler, server: Any = None, compress: bool = False, outbox: Any = None) -> None:
        self.root = Path(output_dir).resolve()
        self.compress = compress  # <key>.jsonl.gz instead of <key>.jsonl
        self.crawler = crawler
        self.stats = crawler.stats
        self.files: OrderedDict[tuple[str, str], BucketFile] = OrderedDict()
        self.server = server  # distributed mode: page ids written by any worker
        self.lease: Any = None  # a worker's (node.Lease): proves when no other worker can have written a page
        if server is not None:
            self._page_known, self._page_written = scripts.load(server, "page_known"), scripts.load(server, "page_written")
        self.outbox = outbox  # the crawler's (outbox.py): a page's record rides the worker's next round trip
        self._load: int | None = None  # the written pages' bucket load on this server (compact.py)
        self.jobs_opened: set[str] = set()
        self.fence: Any = lambda: None  # scrapy collect: raises once its lock is another collector's
        self.job_started: dict[str, float | None] = {}
        self.archives: dict[Path, dict[str, set[tuple[str, str]]]] = {}  # archive -> key -> pages in it
        self.archive_listing: dict[Path, tuple[float, list[Path]]] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "BucketPipeline":
        server = None
        if uses_redis(crawler.settings):
            from tweetform.state.redis.connection import for_crawler

            server = for_crawler(crawler)
        pipeline = cls(crawler.settings.get("TWEETFORM_OUTPUT_DIR") or "data", crawler, server,
                       compress=crawler.settings.getbool("TWEETFORM_OUTPUT_COMPRESS"),
                       outbox=outbox_of(crawler) if server is not None else None)
        if server is not None:
            pipeline.lease = lease_of(crawler)
        return pipeline

    def _written_elsewhere(self, job: str, pid: str, delivery: Any = None) -> bool:
        """Whether another writer (a worker with its own output directory) wrote the page: asked of Redis, unless
        this worker proves nobody else can have fetched it (``delivery``: how it got the page's request, see
        :meth:`tweetform.state.redis.node.Lease.proves_only_writer`; None: not known, asked)."""
        if self.server is None:
            return False
        layout = keys.written(job)
        try:
            if job not in self.jobs_opened:  # an older tweetform's written SET of the job becomes compact (migrate.py)
                migrate.open_job(self.server, job)
                self.jobs_opened.add(job)
            if self.lease is not None and self.lease.proves_only_writer(delivery, connects(self.server)):
                self.stats.inc_value("tweetform/pages/written_check_skipped")
                return False
            return bool(scripts.execute(self.server, lambda pipe: scripts.in_pipeline(  # after the outbox's records
                pipe, self._page_known, [layout], [compact.bucket_prefix(layout), _digest(pid)]), self.outbox)[0])
        except redis.RedisError:
            return False  # Redis away: the file's own index still keeps this host's copy single

    def _record(self, job: str, pid: str, bucket: str, failed: bool = False, depth: Any = None) -> None:
        """After the write (a crash between the two leaves the page in the file, which its
        next writer reads back: written once; the other order could lose it). The job's written
        pages are kept in compact buckets (``compact.py``: ~14 bytes a page), counted once; in a worker the record
        rides its next round trip (``outbox.py``: before the request's acknowledgement). The job's counters
        (the whole job's numbers, :mod:`tweetform.numbers`): in Redis, or in the local job store,
        whose JOBDIR commits them with the page's acknowledgement."""
        if self.server is None:
            store = state.existing_job_store(self.crawler)
            if store is not None and job:
                counts = {"pages" if bucket != "errors" else "errors": 1}
                if failed:
                    counts.update({"failed": 1, **({f"failed/{depth}": 1} if isinstance(depth, int) else {})})
                store.progress(job, **counts)
            return
        layout = keys.written(job)
        try:
            if self._load is None:
                self._load = compact.hash_load(self.server)
        except redis.RedisError as exc:
            _not_recorded(exc)
            return
        # a page that failed for good counts as failed too: the job ends with a non-zero status (scrapy wait)
        page_keys = [layout, keys.bucket_counts(), keys.job_progress(job), keys.job(job)]
        args = [compact.bucket_prefix(layout), self._load, _digest(pid), bucket, "pages" if bucket != "errors" else "errors",
                int(failed), f"failed/{depth}" if failed and isinstance(depth, int) else ""]
        if self.outbox is None:
            try:
                self._page_written(keys=page_keys, args=args)
            except redis.RedisError as exc:
                _not_recorded(exc)
        else:
            self.outbox.send(self._page_written, page_keys, args, _not_recorded)

    def _started(self, job: str) -> float | None:
        """When the job first started (its manifest), as a timestamp; None if unknown."""
        if job not in self.job_started:
            manifest = read_manifest(self.root, job) if job else None
            try:
                when = datetime.fromisoformat(str(manifest["started"]).replace("Z", "+00:00")).timestamp() if manifest else None
            except (KeyError, ValueError):
                when = None
            self.job_started[job] = when
        return self.job_started[job]

    def _archived(self, bucket: str, key: str, job: str) -> set[tuple[str, str]]:
        """Pages of ``key`` in the bucket's archives made since the job started (each archive read once)."""
        since = self._started(job)
        folder = self.root / bucket
        if since is None or not folder.is_dir():
            return set()
        found: set[tuple[str, str]] = set()
        for path in self._archives_in(folder):
            try:
                if path.stat().st_mtime < since - 1:
                    continue
            except FileNotFoundError:
                continue
            by_key = self.archives.get(path)
            if by_key is None:
                by_key = self.archives[path] = {}
                for member, line in iter_archive_lines(path):
                    name = key_of(member)
                    if name is not None:
                        by_key.setdefault(name, set()).update(identities([line]))
            found |= by_key.get(key, set())
        return found

    def _archives_in(self, folder: Path) -> list[Path]:
        """The folder's archives, listed again at most every ARCHIVE_RELIST seconds (a bucket
        folder can hold a file per user: listing it for every file opened would be quadratic)."""
        listed = self.archive_listing.get(folder)
        now = time.monotonic()
        if listed is None or now - listed[0] > self.ARCHIVE_RELIST:
            with os.scandir(folder) as entries:
                listed = self.archive_listing[folder] = (now, [Path(e.path) for e in entries if e.name.endswith(ARCHIVE)])
        return listed[1]

    def _file(self, bucket: str, key: str, job: str = "") -> BucketFile:
        handle = self.files.get((bucket, key))
        if handle is None:
            if not SAFE_NAME.match(bucket) or not SAFE_KEY.match(key) or key.startswith(".") or bucket == JOBS_DIR:
                raise DropItem(f"refusing unsafe bucket/key {bucket!r}/{key!r}")
            if len(self.files) >= self.MAX_OPEN:
                _, old = self.files.popitem(last=False)
                old.close()
            handle = BucketFile(self.root / bucket / f"{key}.jsonl{'.gz' if self.compress else ''}", self.compress)
            handle.seen |= self._archived(bucket, key, job)
            self.files[(bucket, key)] = handle
        else:
            self.files.move_to_end((bucket, key))
        return handle

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, PageItem):
            return item
        prov = item[PROVENANCE]
        bucket, key, pid = prov["bucket"], str(prov["key"]), prov["page_id"]
        job = str(prov.get("job", ""))
        self.fence()
        handle = self._file(bucket, key, job)
        skip = (job, pid) in handle.seen or self._written_elsewhere(job, pid, item.delivery)
        if not skip:
            self.fence()  # the last look before the write: after the Redis round trip above
        if skip or not handle.write_once((job, pid), line_for(item)):
            self.stats.inc_value("tweetform/pages/duplicate_skipped")
            item.skipped = True
            return item
        failed = bucket == "errors" and item.get("reason") == "failed" and not getattr(item, "failure_counted", False)
        self._record(job, pid, bucket, failed=failed, depth=prov.get("depth"))
        self.stats.inc_value("tweetform/pages/written")
        self.stats.inc_value(f"tweetform/buckets/{bucket}")
        return item

    def close_spider(self) -> None:
        for handle in self.files.values():
            handle.close()
        self.files.clear()


def _not_recorded(exc: BaseException) -> None:
    logger.warning("could not record a written page in Redis (Redis away)")


def is_held(path: Path) -> bool:
    """Whether a writer holds the file (its shared flock stops an exclusive one)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
