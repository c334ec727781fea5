"""The dupe filter of the Redis backend: scrapy-redis's ``RFPDupeFilter``, one set per job.

A request's fingerprint (Scrapy's request fingerprinter) belongs to its job, so
running a job again under a new id crawls again. A job's fingerprints are kept whole (20
bytes each) in small hashes Redis stores compactly (``compact.py``), not in one SET. The fingerprint is added to
the job's set *inside* the push script (``lua/queue_push.lua``), atomically with
queuing the request: a fingerprint is never recorded for a request that did not
reach the queue (a worker dying between the two would otherwise lose it), and a
page's new requests cost one round trip together, not one each. A claimed user's first page packed by
its spider keeps no fingerprint: its claim (``seen.py``) is marked queued in the same script instead.
"""

from __future__ import annotations

from typing import Any

from scrapy import Request
from scrapy_redis.dupefilter import RFPDupeFilter

from tweetform.state.redis import connection, keys


class JobDupeFilter(RFPDupeFilter):
    def __init__(self, server: Any, key: str, debug: bool = False, fingerprinter: Any = None, spider_name: str = "") -> None:
        super().__init__(server, key, debug)
        self.fingerprinter = fingerprinter
        self.spider_name = spider_name

    @classmethod
    def from_spider(cls, spider: Any) -> "JobDupeFilter":
        crawler = spider.crawler
        return cls(connection.for_crawler(crawler), keys.dupefilter(spider.name, "*"), crawler.settings.getbool("DUPEFILTER_DEBUG"),
                   crawler.request_fingerprinter, spider.name)

    def fingerprint_and_key(self, request: Request) -> tuple[bytes, str]:
        """What the push script checks: the fingerprint's 20 bytes and the job's dupe-filter layout
        (compact buckets, ``compact.py``: ~24 bytes a request); (b"", "") for requests not filtered."""
        job = (request.meta.get("tweetform_ctx") or {}).get("job", "")
        if request.dont_filter or not job:
            return b"", ""
        return self.fingerprinter.fingerprint(request), keys.dupefilter(self.spider_name, job)

    def request_fingerprint(self, request: Request) -> str:
        # Scrapy's fingerprinter (REQUEST_FINGERPRINTER_*), not scrapy-redis's own JSON+SHA1
        return self.fingerprinter.fingerprint(request).hex()

    def request_seen(self, request: Request) -> bool:
        # Decided in the push script (see the module docstring): the scrapy-redis
        # Scheduler's enqueue_request then hands every request to the queue.
        return False

    def clear(self) -> None:
        # one set per job: a job's sets go with the job (purge / TTL), never all at once
        pass
