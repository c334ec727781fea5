"""Where a page is written: ``<output>/<bucket>/<key>.jsonl``, one page per line.

Each line goes to the file in one ``write`` on an ``O_APPEND`` descriptor, so a
killed process leaves only whole lines (a torn last line from a crash is cut
off when the file is next opened). A page already in its file — same
``page_id`` — is not written again, which makes at-least-once fetching give
exactly-once output.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

import redis
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem

from tweetform.distributed import keys
from tweetform.export.files import complete_members_end, gzip_member, iter_lines
from tweetform.items import PROVENANCE, PageItem

logger = logging.getLogger(__name__)
SAFE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
SAFE_KEY = re.compile(r"^[A-Za-z0-9_.-]+$")


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


class BucketFile:
    """One open ``.jsonl`` file and the page ids already in it.

    ``compress``: a ``.jsonl.gz`` file, each line written as its own gzip member
    (see :mod:`tweetform.export.files`), so appends and crash repair work alike."""

    def __init__(self, path: Path, compress: bool = False) -> None:
        self.path = path
        self.compress = compress
        path.parent.mkdir(parents=True, exist_ok=True)
        self.seen: set[str] = set()
        if path.exists():
            self._repair_and_index()
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _repair_and_index(self) -> None:
        if self.compress:
            end = complete_members_end(self.path)
            if end < self.path.stat().st_size:  # a torn last member from a killed writer
                with open(self.path, "r+b") as fh:
                    fh.truncate(end)
                logger.warning("cut a partial last line from %s", self.path)
            self._index(line for _, line in iter_lines(self.path))
            return
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a torn last line from a killed writer
            with open(self.path, "r+b") as fh:
                fh.truncate(end)
            logger.warning("cut a partial last line from %s", self.path)
        self._index(data[:end].splitlines())

    def _index(self, lines: Any) -> None:
        for line in lines:
            try:
                pid = json.loads(line)[PROVENANCE]["page_id"]
            except (ValueError, KeyError, TypeError):
                continue
            self.seen.add(pid)

    def write(self, line: bytes) -> None:
        view = memoryview(gzip_member(line) if self.compress else line)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]

    def close(self) -> None:
        os.close(self.fd)


class BucketPipeline:
    """Writes every page and error record to its bucket file, each exactly once."""

    MAX_OPEN = 256

    def __init__(self, output_dir: str, crawler: Crawler, server: Any = None, compress: bool = False) -> None:
        self.root = Path(output_dir).resolve()
        self.compress = compress  # <key>.jsonl.gz instead of <key>.jsonl
        self.crawler = crawler
        self.stats = crawler.stats
        self.files: OrderedDict[tuple[str, str], BucketFile] = OrderedDict()
        self.server = server  # distributed mode: page ids written by any worker

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "BucketPipeline":
        server = None
        if crawler.settings.get("REDIS_URL"):
            from tweetform.distributed.scheduler import redis_client

            server = redis_client(crawler.settings)
        return cls(crawler.settings.get("TWEETFORM_OUTPUT_DIR") or "data", crawler, server,
                   compress=crawler.settings.getbool("TWEETFORM_OUTPUT_COMPRESS"))

    def _written_elsewhere(self, job: str, pid: str) -> bool:
        if self.server is None:
            return False
        try:
            return bool(self.server.sismember(keys.written(job), pid))
        except redis.RedisError:
            return False  # Redis away: the file's own index still keeps this host's copy single

    def _record(self, job: str, pid: str, bucket: str) -> None:
        if self.server is None:
            return
        try:
            pipe = self.server.pipeline()
            pipe.sadd(keys.written(job), pid)
            pipe.hincrby(keys.bucket_counts(), bucket, 1)
            pipe.hincrby(keys.job_progress(job), "pages" if bucket != "errors" else "errors", 1)
            pipe.execute()
        except redis.RedisError:
            logger.warning("could not record a written page in Redis (Redis away)")

    def _file(self, bucket: str, key: str) -> BucketFile:
        handle = self.files.get((bucket, key))
        if handle is None:
            if not SAFE_NAME.match(bucket) or not SAFE_KEY.match(key) or key.startswith("."):
                raise DropItem(f"refusing unsafe bucket/key {bucket!r}/{key!r}")
            handle = BucketFile(self.root / bucket / f"{key}.jsonl{'.gz' if self.compress else ''}", self.compress)
            self.files[(bucket, key)] = handle
            if len(self.files) > self.MAX_OPEN:
                _, old = self.files.popitem(last=False)
                old.close()
        else:
            self.files.move_to_end((bucket, key))
        return handle

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, PageItem):
            return item
        prov = item[PROVENANCE]
        bucket, key, pid = prov["bucket"], str(prov["key"]), prov["page_id"]
        handle = self._file(bucket, key)
        job = str(prov.get("job", ""))
        if pid in handle.seen or self._written_elsewhere(job, pid):
            self.stats.inc_value("tweetform/pages/duplicate_skipped")
            return item
        handle.write(line_for(item))
        handle.seen.add(pid)
        self._record(job, pid, bucket)
        self.stats.inc_value("tweetform/pages/written")
        self.stats.inc_value(f"tweetform/buckets/{bucket}")
        return item

    def close_spider(self) -> None:
        for handle in self.files.values():
            handle.close()
        self.files.clear()
