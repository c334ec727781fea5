"""Scrapy's ``RFPDupeFilter`` with its fingerprints in the JOBDIR database.

Scrapy's own writes ``requests.seen`` as each request is enqueued, ahead of the
queue's state: a killed crawl then holds fingerprints of requests it never
kept, which are lost for good. Here a fingerprint is written in the same
transaction as the request's queue row, so both survive or neither does.
"""

from __future__ import annotations

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.dupefilters import RFPDupeFilter
from scrapy.utils.job import job_dir

from tweetform.state.local.database import Database, database


class JobDirDupeFilter(RFPDupeFilter):
    db: Database | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "JobDirDupeFilter":
        found = cls(None, crawler.settings.getbool("DUPEFILTER_DEBUG"), fingerprinter=crawler.request_fingerprinter)
        if job_dir(crawler.settings):
            found.db = database(crawler)
            found._fingerprints.update(fp for (fp,) in found.db.query("SELECT fp FROM seen"))
        return found

    def request_seen(self, request: Request) -> bool:
        fp = self._fingerprint(request)
        if fp in self._fingerprints:
            return True
        self._fingerprints.add(fp)
        if self.db is not None:
            self.db.execute("INSERT OR IGNORE INTO seen (fp) VALUES (?)", (fp,))
        return False
