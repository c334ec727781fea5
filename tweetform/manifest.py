"""A manifest per job beside its data: ``<output>/_jobs/<job>.json``.

It says what a job was and how it ended, and outlives any Redis state::

    {"job": "friends-…", "spider": "friends", "arguments": {…}, "bucket": "friend_ids",
     "started": "2026-12-01T22:40:00.123Z", "ended": "…", "state": "finished",
     "pages": 120, "errors": 3, "failed_pages": 0, "last_complete_level": 2,
     "runs": [{"started": "…", "ended": "…", "state": "finished", "pages": 120, …}]}

``state`` is the crawl's finish reason (``finished``, ``shutdown``,
``no_usable_credentials``, …; ``running`` while a run is going or after one was
killed). Counts add up the job's runs (a job resumed with the same id runs
again); a killed run keeps ``"state": "running"`` and no counts of its own.
``last_complete_level`` (friends, followers): the deepest BFS level every
request of which — and of each level before it — ended with a page or an
account error, none failed for good, and (``max_users``) every account of which
was expanded. For the whole job: a local job's queue (its ``JOBDIR``) says which
levels still have requests, whichever run queued them; a distributed job's shared state in
Redis says it, whichever worker did them (:meth:`tweetform.state.redis.jobs.RedisJobStore.last_complete_level`).
Counts and money are the whole job's too (:func:`tweetform.numbers.job_numbers`).

:func:`write_manifest` is the one writer (merge, write a temporary file, fsync,
rename), so other parts (cost accounting, the Redis backend when a distributed
job ends) add their fields with one call. :class:`ManifestExtension` writes it
for the job a ``scrapy crawl`` process starts, at its start and end.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler

from tweetform.cost import usd
from tweetform.cost.budget import budget_middleware
from tweetform.export.files import JOBS_DIR
from tweetform.items import PROVENANCE, utc_now
from tweetform import state
from tweetform.numbers import job_numbers
from tweetform.state.base import last_complete_level
from tweetform.state.local.database import opened
from tweetform.state.local.queue import queued_depths

logger = logging.getLogger(__name__)
NETWORK_SPIDERS = frozenset({"friends", "followers"})
COUNTS = ("pages", "errors", "failed_pages")


def manifest_path(output_dir: str | Path, job_id: str) -> Path:
    return Path(output_dir) / JOBS_DIR / f"{job_id}.json"


def read_manifest(output_dir: str | Path, job_id: str) -> dict[str, Any] | None:
    try:
        return json.loads(manifest_path(output_dir, job_id).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None


def write_manifest(output_dir: str | Path, job_id: str, **fields: Any) -> Path:
    """Merge ``fields`` into the job's manifest, atomically (temporary file + rename)."""
    path = manifest_path(output_dir, job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = read_manifest(output_dir, job_id) or {"job": job_id}
    data.update(fields)
    fd, tmp = tempfile.mkstemp(prefix=f".{job_id}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=False, ensure_ascii=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


_PAGE_SIZE = re.compile(r"(?<=[?&])(?:max_results|count)=\d+(?:&|$)")


def page_key(url: str) -> int:
    """A request's page, whatever its page size: near the end of a budget a page is asked for
    smaller (tweetform.cost.budget), and it is still that page."""
    return hash(_PAGE_SIZE.sub("", url))


class LevelTracker:
    """Which BFS levels of a network crawl are complete, from the requests this process saw."""

    def __init__(self) -> None:
        # hashes of request URLs (a retried request is the same URL again), not the URLs: memory
        self.opened: defaultdict[int, set[int]] = defaultdict(set)
        self.ended: defaultdict[int, set[int]] = defaultdict(set)
        self.failed: defaultdict[int, int] = defaultdict(int)

    def scheduled(self, request: Request) -> None:
        ctx = request.meta.get("tweetform_ctx") or {}
        if isinstance(ctx.get("depth"), int):
            self.opened[ctx["depth"]].add(page_key(request.url))

    def item(self, item: Any) -> None:
        prov = item.get(PROVENANCE) if isinstance(item, dict) else None
        if not isinstance(prov, dict) or not isinstance(prov.get("depth"), int):
            return
        level = prov["depth"]
        self.ended[level].add(page_key(str(prov.get("url"))))
        if prov.get("bucket") == "errors" and item.get("reason") == "failed":
            self.failed[level] += 1

    def last_complete(self, depth: int, before: int | None) -> int | None:
        """Deepest complete level; a level without requests in this run (a resumed job)
        counts as complete if the earlier run found it so (``before``)."""
        last = None
        for level in range(1, depth + 1):
            if not self.opened[level]:
                if before is not None and level <= before:
                    last = level
                    continue
                break
            if self.failed[level] or not self.opened[level] <= self.ended[level]:
                break
            last = level
        return last


class ManifestExtension:
    """Writes ``_jobs/<job>.json`` for the job this process starts (``scrapy crawl SPIDER -a …``)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.output_dir = crawler.settings.get("TWEETFORM_OUTPUT_DIR") or "data"
        self.job: Any = None
        self.run: dict[str, Any] = {}
        self.levels = LevelTracker()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "ManifestExtension":
        ext = cls(crawler)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(ext.request_scheduled, signal=signals.request_scheduled)
        crawler.signals.connect(ext.item_scraped, signal=signals.item_scraped)
        return ext

    def spider_opened(self, spider: Spider) -> None:
        job = getattr(spider, "given_job", None)
        if job is None:
            return  # a worker: its jobs come from Redis, and their manifests from the backend
        if self.crawler.settings.getbool("TWEETFORM_COLLECT"):
            return  # collect mode writes nothing here: `scrapy collect` writes the manifest beside the data
        self.job = job
        before = read_manifest(self.output_dir, job.job) or {}
        self.run = {"started": utc_now(), "state": "running"}
        runs = [*before.get("runs", []), self.run]
        try:
            write_manifest(self.output_dir, job.job, spider=spider.name, arguments=job.as_message(), bucket=job.bucket,
                           started=before.get("started", self.run["started"]), ended=None, state="running", runs=runs)
        except OSError as exc:
            logger.error("could not write the job manifest: %s", exc)
            self.job = None

    def request_scheduled(self, request: Request, spider: Spider) -> None:
        if self.job is not None and spider.name in NETWORK_SPIDERS:
            self.levels.scheduled(request)

    def item_scraped(self, item: Any, response: Any, spider: Spider) -> None:
        if self.job is not None and spider.name in NETWORK_SPIDERS:
            self.levels.item(item)

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self.job is None:
            return
        stats = self.crawler.stats
        errors = int(stats.get_value("tweetform/buckets/errors", 0))
        self.run.update(ended=utc_now(), state=reason, pages=int(stats.get_value("tweetform/pages/written", 0)) - errors,
                        errors=errors, failed_pages=int(stats.get_value("tweetform/pages/failed", 0)))
        before = read_manifest(self.output_dir, self.job.job) or {}
        runs = [r for r in before.get("runs", []) if r.get("started") != self.run["started"]] + [self.run]
        fields: dict[str, Any] = {"ended": self.run["ended"], "state": reason, "runs": runs}
        numbers = job_numbers(self.crawler, self.job)  # the whole job: every run, killed ones too
        fields.update(pages=numbers.pages, errors=numbers.errors, failed_pages=numbers.failed)
        budget = budget_middleware(self.crawler)
        if budget is not None and not budget.shared:  # what the job spent (the whole job's, every run of it), its budget
            fields.update(spent_usd=usd(numbers.spent), budget_usd=usd(numbers.budget) if numbers.budget else None,
                          spent_usd_by_app={app: usd(n) for app, n in sorted(numbers.by_app.items())},
                          # this run's stop (a continued job that went on to the end was not stopped: no stale reason)
                          stopped_by=("usage_capped" if self.job.job in budget.capped else "budget")
                          if self.job.job in budget.out_of_budget else None)
        for name, value in (("pages", numbers.pages), ("errors", numbers.errors), ("failed", numbers.failed),
                            ("usd", usd(numbers.spent))):
            stats.set_value(f"tweetform/job/{name}", value)  # the stats say the whole job's numbers too
        if spider.name in NETWORK_SPIDERS:
            db = opened(self.crawler)
            shared = getattr(state.existing_job_store(self.crawler), "last_complete_level", None)
            if shared is not None:  # distributed: from the job's state every worker shares (Redis), not this process's view
                fields["last_complete_level"] = shared(self.job)
            elif db is not None:  # the job's queue (JOBDIR) says which levels still have requests, whatever the run
                fields["last_complete_level"] = last_complete_level(queued_depths(db), numbers.failed_levels, self.job.depth,
                                                                     numbers.cut_level)
            else:
                fields["last_complete_level"] = self.levels.last_complete(self.job.depth, before.get("last_complete_level"))
        try:
            write_manifest(self.output_dir, self.job.job, **fields)
        except OSError as exc:
            logger.error("could not write the job manifest: %s", exc)
