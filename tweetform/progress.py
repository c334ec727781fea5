"""Live progress of a crawl: one line that updates in a terminal, periodic log lines otherwise.

    friends · 51 pages · users 40/52 · 1 error · $3.12 spent of $5.00 · 12 pages/min · 0:04:10 · waiting 8 m 12 s for
    /friends/ids quota (2 credential lane(s) used up), resumes 14:05:12 UTC

The numbers are the whole job's (:mod:`tweetform.numbers`: every run of a continued job, and every worker of a
distributed one), the same as the stop line, the closing summary and the manifest say; a continued job adds this
run's share (``whole job (this run: 12 pages, $0.12)``). *pages* are data pages (error records apart).
*users* is the users expanded of the reachable set found so far (the seeds and
every account a page at a level below ``depth`` listed, capped by
``max_users``); *errors* counts the ``errors`` bucket's records (protected,
suspended, missing, failed); *spent* is what the pages cost under pay-per-use
(with the job's budget, if it has one). A rate-limit wait is shown with its endpoint, the
credential lanes used up and the time it resumes — the quota gate's own line
(:meth:`tweetform.quota.gate.QuotaGate.describe_wait`).

``TWEETFORM_PROGRESS``: ``auto`` (default: the live line when stderr is a
terminal, else a log line every ``TWEETFORM_PROGRESS_INTERVAL`` seconds),
``bar``, ``log`` or ``off``. In a terminal, log lines print above the live line,
which stays at the bottom.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from typing import IO, Any

import redis
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import create_looping_call

from tweetform import state
from tweetform.cost import dollars
from tweetform.cost.budget import budget_middleware
from tweetform.items import PROVENANCE
from tweetform.numbers import job_numbers, run_numbers

logger = logging.getLogger(__name__)
MODES = ("auto", "bar", "log", "off")
REFRESH = 0.5  # seconds between redraws of the live line
NETWORK_ENDPOINTS = frozenset({
    "/friends/ids", "/friends/list", "/2/users/:id/following", "/followers/ids", "/followers/list", "/2/users/:id/followers",
})
MAX_TRACKED = 5_000_000  # reachable users remembered per crawler; past it the count shows "+"
CLEAR = "\r\x1b[K"


def clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


class TerminalLine:
    """The live line at the bottom of a terminal, shared by every crawler of the process.

    While shown, the root logger's handlers writing to the same terminal go
    through :class:`_AboveLine`, which clears the line, writes the log record
    and draws the line again, so log output and the line never mix."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.sources: list["ProgressExtension"] = []
        self.shown = False
        self.patched: list[logging.StreamHandler] = []

    def attach(self, source: "ProgressExtension") -> None:
        if not self.sources:
            for handler in logging.getLogger().handlers:
                if isinstance(handler, logging.StreamHandler) and handler.stream is self.stream:
                    handler.setStream(_AboveLine(self.stream, self))  # type: ignore[arg-type]
                    self.patched.append(handler)
        self.sources.append(source)

    def detach(self, source: "ProgressExtension") -> None:
        self.draw()
        if source in self.sources:
            self.sources.remove(source)
        if not self.sources:
            if self.shown:
                self.stream.write("\n")  # keep the last state on screen
                self.stream.flush()
                self.shown = False
            for handler in self.patched:
                handler.setStream(self.stream)
            self.patched.clear()

    def text(self) -> str:
        width = shutil.get_terminal_size((120, 24)).columns
        line = "  |  ".join(source.line() for source in self.sources)
        return line if len(line) < width else line[: max(10, width - 2)] + "…"

    def draw(self) -> None:
        if not self.sources:
            return
        self.stream.write(CLEAR + self.text())
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write(CLEAR)
            self.shown = False


class _AboveLine:
    """A stream that writes above the live line."""

    def __init__(self, stream: IO[str], line: TerminalLine) -> None:
        self._stream = stream
        self._line = line

    def write(self, text: str) -> int:
        self._line.clear()
        written = self._stream.write(text)
        if text.endswith("\n"):
            self._line.draw()
        return written

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


_terminal_lines: dict[int, TerminalLine] = {}


def terminal_line(stream: IO[str]) -> TerminalLine:
    found = _terminal_lines.get(id(stream))
    if found is None:
        found = _terminal_lines[id(stream)] = TerminalLine(stream)
    return found


class ProgressExtension:
    """Counts what a crawl has done and shows it (see the module docstring)."""

    def __init__(self, crawler: Crawler, mode: str, interval: float, stream: IO[str]) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        self.mode = mode
        self.interval = interval
        self.stream = stream
        self.started = time.monotonic()
        self.known: set[int] = set()  # users expanded or waiting to be, found so far
        self.overflow = False
        self.network = False
        self.jobs: dict[str, Any] = {}
        self.last_pages: int | None = None
        self.last_counts: dict[str, Any] | None = None  # counts(): what the line showed last (Redis away: shown again)
        self.last_at = self.started
        self.rate = 0.0
        self.task: Any = None
        self.display: TerminalLine | None = None
        self.logged_state: Any = None
        self.logged_at = 0.0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "ProgressExtension":
        s = crawler.settings
        mode = str(s.get("TWEETFORM_PROGRESS") or "auto").lower()
        if mode not in MODES:
            raise NotConfigured(f"TWEETFORM_PROGRESS must be one of {', '.join(MODES)}")
        if mode == "off":
            raise NotConfigured
        stream = sys.stderr
        if mode == "auto":
            mode = "bar" if _isatty(stream) and not s.get("LOG_FILE") else "log"
        ext = cls(crawler, mode, max(0.1, s.getfloat("TWEETFORM_PROGRESS_INTERVAL")), stream)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(ext.item_scraped, signal=signals.item_scraped)
        return ext

    # --- counting -----------------------------------------------------------------------

    def item_scraped(self, item: Any) -> None:
        prov = item.get(PROVENANCE) if isinstance(item, dict) else None
        if not isinstance(prov, dict) or prov.get("endpoint") not in NETWORK_ENDPOINTS:
            return
        self.network = True
        if self.overflow:
            return
        source = prov.get("source_user_id") if prov.get("bucket") != "errors" else item.get("id")
        if source is not None and str(source).isdigit():
            self.known.add(int(source))
        if prov.get("bucket") == "errors":
            return
        job = self._job(str(prov.get("job")))
        depth = int(prov.get("depth") or 1)
        if job is not None and depth < job.depth:
            from tweetform.spiders.network import ids_in_page

            self.known.update(ids_in_page(item))
        if len(self.known) > MAX_TRACKED:
            self.overflow = True
            self.known.clear()

    def _job(self, job_id: str) -> Any:
        if job_id not in self.jobs:
            store = state.existing_job_store(self.crawler)
            self.jobs[job_id] = store.load(job_id) if store is not None else None
        return self.jobs[job_id]

    def counts(self) -> dict[str, Any]:
        """What the line shows: the whole job's numbers (:func:`tweetform.numbers.job_numbers`) for the job this
        crawl started; a worker serving many jobs shows what it did itself. Redis away (a distributed crawl's
        numbers are read there on each tick): the numbers last read (this run's own before any), so the line's timer
        goes on."""
        try:
            self.last_counts = self._counts(shared=True)
        except redis.RedisError:
            if self.last_counts is None:
                return self._counts(shared=False)
        return self.last_counts

    def _counts(self, shared: bool) -> dict[str, Any]:
        stats = self.stats.get_stats()
        given = getattr(getattr(self.crawler, "spider", None), "given_job", None)
        expanded = int(stats.get("tweetform/users/expanded", 0))
        if given is not None and shared:
            n = job_numbers(self.crawler, given)
            found = {"pages": n.pages, "errors": n.errors, "failed": n.failed, "spent": n.spent, "budget": n.budget,
                     "run": (n.run_pages, n.run_spent) if n.earlier_runs else None}
            expanded = n.users if n.users is not None else expanded
        else:
            pages, errors, spent = run_numbers(self.crawler)
            budget_mw = budget_middleware(self.crawler)
            budgets = {budget_mw.budget_of(j) for j in self.jobs} if budget_mw is not None and shared else set()
            found = {"pages": pages, "errors": errors, "failed": int(stats.get("tweetform/pages/failed", 0)), "spent": spent,
                     "budget": next(iter(budgets)) if len(budgets) == 1 else 0, "run": None}
        reach = max(expanded, len(self.known))
        caps = [j.max_users for j in self.jobs.values() if j is not None and j.max_users is not None]
        if caps and len(caps) == len(self.jobs):
            reach = min(reach, max(sum(caps), expanded))
        found.update(expanded=expanded, reach=reach,
                     network=self.network or expanded > 0 and self._spider_name() in ("friends", "followers"))
        return found

    def _spider_name(self) -> str:
        spider = getattr(self.crawler, "spider", None)
        return getattr(spider, "name", "crawl")

    def spend(self, c: dict[str, Any]) -> str:
        """``$1.25 spent`` (``of $5.00`` with a budget): what the pages cost (tweetform.cost)."""
        if not c["spent"] and not c["budget"]:
            return ""
        return f"{dollars(c['spent'])} spent" + (f" of {dollars(c['budget'])}" if c["budget"] else "")

    def waits(self) -> list[str]:
        gate = state.existing_gate(self.crawler)
        describe = getattr(gate, "current_waits", None)
        try:
            return describe() if describe is not None else []
        except redis.RedisError:  # shared quota, Redis away: the scheduler says so, and what waits is not known
            return []

    def line(self) -> str:
        c = self.counts()
        now = time.monotonic()
        if self.last_pages is None:  # the pages the job had when this run began are not this run's rate
            self.last_pages = c["pages"]
        if now - self.last_at >= 5.0:
            self.rate = (c["pages"] - self.last_pages) * 60.0 / (now - self.last_at)
            self.last_pages, self.last_at = c["pages"], now
        parts = [self._spider_name(), plural(c["pages"], "page")]
        if c["network"]:
            parts.append(f"users {c['expanded']:,}/{c['reach']:,}{'+' if self.overflow else ''}")
        parts.append(plural(c["errors"], "error") + (f" ({c['failed']:,} failed)" if c["failed"] else ""))
        spent = self.spend(c)
        if spent:
            parts.append(spent)
        if c["run"] is not None:  # a continued job: the numbers are the whole job's; this run's share apart
            parts.append(f"whole job (this run: {plural(c['run'][0], 'page')}, {dollars(c['run'][1])})")
        if self.rate:
            parts.append(f"{self.rate:,.0f} pages/min")
        parts.append(clock(now - self.started))
        return " · ".join(parts + self.waits())

    # --- showing --------------------------------------------------------------------------

    def spider_opened(self) -> None:
        self.started = self.last_at = time.monotonic()
        if self.mode == "bar":
            self.display = terminal_line(self.stream)
            self.display.attach(self)
            self.task = create_looping_call(self.display.draw)
            self.task.start(REFRESH, now=True)
        else:
            self.task = create_looping_call(self.log)
            self.task.start(self.interval, now=False)

    def log(self, final: bool = False) -> None:
        """A progress log line; an idle crawl (nothing new, no wait) logs one every ten intervals only."""
        counts = self.counts()
        waits = self.waits()
        state = (tuple(sorted(counts.items())), bool(waits))
        now = time.monotonic()
        if not final and not waits and state == self.logged_state and now - self.logged_at < 10 * self.interval:
            return
        self.logged_state, self.logged_at = state, now
        logger.info("progress: %s", self.line())

    def spider_closed(self) -> None:
        if self.task is not None and self.task.running:
            self.task.stop()
        if self.display is not None:
            self.display.detach(self)
            self.display = None
        else:
            self.log(final=True)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
