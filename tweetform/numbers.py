"""One set of numbers per job: the pages, error records, failed pages, users, spend and budget every part shows.

The progress line, the budget's stop line, the closing summary, the stats and
the manifest all read :func:`job_numbers`, so they cannot disagree. Each number
is the whole job's (every run of it: a job continued after a stop, or served by
many workers) from the job's state — the local job store (its ``JOBDIR``
commits the counters with each page's acknowledgement) or Redis — and this run's
share comes from the crawl's own stats, for the lines that say "this run".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scrapy.crawler import Crawler

from tweetform import state
from tweetform.cost import micro
from tweetform.cost.budget import SPENT, budget_middleware

NETWORK_SPIDERS = frozenset({"friends", "followers"})


@dataclass
class JobNumbers:
    job: str
    pages: int = 0  # data pages written (error records apart)
    errors: int = 0  # records in the errors bucket (protected, suspended, missing accounts; failed pages)
    failed: int = 0  # pages that failed for good
    users: int | None = None  # network crawls: users expanded
    spent: int = 0  # micro-dollars
    budget: int = 0  # micro-dollars; 0: unlimited
    by_app: dict[str, int] = field(default_factory=dict)  # micro-dollars per app
    failed_levels: set[int] = field(default_factory=set)  # BFS levels with a page that failed for good
    cut_level: int | None = None  # max_users: the level the cap cut short (its users were not all expanded)
    run_pages: int = 0  # this run's share
    run_errors: int = 0
    run_spent: int = 0

    @property
    def earlier_runs(self) -> bool:
        """Whether other runs (or workers) did part of the job."""
        return (self.pages, self.errors, self.spent) != (self.run_pages, self.run_errors, self.run_spent)


def run_numbers(crawler: Crawler) -> tuple[int, int, int]:
    """This run's (pages, error records, micro-dollars), from the crawl's stats."""
    stats = crawler.stats
    errors = int(stats.get_value("tweetform/buckets/errors", 0))
    pages = int(stats.get_value("tweetform/pages/written", 0)) - errors
    return pages, errors, micro(float(stats.get_value("tweetform/cost/usd", 0.0) or 0.0))


def job_numbers(crawler: Crawler, job: Any) -> JobNumbers:
    """The whole job's numbers (``job``: its :class:`tweetform.job.JobArgs`)."""
    found = JobNumbers(job.job)
    found.run_pages, found.run_errors, found.run_spent = run_numbers(crawler)
    store = state.existing_job_store(crawler)
    counters: dict[str, int] = {}
    if store is not None:
        try:
            counters = store.status(job.job).counters
        except NotImplementedError:
            counters = {}
    found.pages = max(int(counters.get("pages", 0)), found.run_pages)
    found.errors = max(int(counters.get("errors", 0)), found.run_errors)
    found.failed = max(int(counters.get("failed", 0)), int(crawler.stats.get_value("tweetform/pages/failed", 0)))
    found.failed_levels = {int(k.split("/", 1)[1]) for k, v in counters.items()
                           if k.startswith("failed/") and k.split("/", 1)[1].isdigit() and v}
    server = getattr(store, "server", None)
    if server is not None:  # distributed: the job's money is in Redis, shared by its workers
        from tweetform.cost.redis_budget import spend_of

        money = spend_of(server, job.job)
        found.spent = micro(money["spent_usd"])
        found.by_app = {app: micro(v) for app, v in money["apps"].items()}
    else:
        found.spent = int(counters.get(SPENT, 0))
        found.by_app = {k.split("/", 1)[1]: int(v) for k, v in counters.items() if k.startswith(f"{SPENT}/") and v}
    found.spent = max(found.spent, found.run_spent)
    budget = budget_middleware(crawler)
    found.budget = budget.budget_of(job.job) if budget is not None else 0
    if job.spider in NETWORK_SPIDERS and store is not None:
        try:
            found.users = store.expanded_count(job)
        except NotImplementedError:
            found.users = None
        if job.max_users is not None and found.users is not None and found.users >= job.max_users:
            levels = getattr(store, "levels", {}).get(job.job)  # the local store's users per level (max_users mode)
            found.cut_level = max(levels.users) if levels is not None and levels.users else None
    return found
