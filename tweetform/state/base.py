"""The state layer's interface: what every backend (local, Redis) provides.

Everything a job must remember across requests — its arguments, the users it
expanded, the levels of ``max_users`` crawls, its counters and its state — goes
through a :class:`JobStore`. The request queue of a backend leases what it
hands out: a leased request is acknowledged once Scrapy's scraper is done with
its callback's output (:class:`AckAfterScraping`), and a lease that is never
acknowledged (the process died) gives the request back on the next open.

Backends: :mod:`tweetform.state.local` (one process: in memory, or SQLite in
Scrapy's ``JOBDIR``) and the Redis backend (many processes).

Network crawls with ``max_users`` expand level by level: each level's users in
breadth-first order, and the next level is assembled only when every request
of the current one has finished, so exactly the first ``max_users`` users in
BFS order are expanded whatever order the pages arrive in.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

from scrapy import Request
from scrapy.utils.asyncio import call_later

from tweetform.job import JobArgs

# job states; the last three are final (they set finished_at)
RUNNING, PAUSED, DONE, CANCELLED, BUDGET = "running", "paused", "done", "cancelled", "budget_exhausted"  # SPEC.md names
FINAL_STATES = frozenset({DONE, CANCELLED, BUDGET})
GONE = "gone"  # state() of a job the store does not know


@dataclass
class JobStatus:
    """What ``scrapy status`` (and a resumed crawl) knows of one job."""

    job: str
    state: str
    created: float | None = None
    finished_at: float | None = None
    counters: dict[str, int] = field(default_factory=dict)  # e.g. pages, errors, failed


class JobStore(abc.ABC):
    """Per-job state. ``jobs`` caches the arguments of the jobs loaded so far."""

    def __init__(self) -> None:
        self.jobs: dict[str, JobArgs] = {}

    # --- jobs ----------------------------------------------------------------------
    @abc.abstractmethod
    def save(self, job: JobArgs) -> None:
        """Register a job (idempotent: saving a known job keeps its state and counters)."""

    @abc.abstractmethod
    def load(self, job_id: str) -> JobArgs | None:
        """The job's arguments, or None when the store does not know it."""

    def state(self, job_id: str) -> str:
        """``running``, ``paused``, ``done``, ``cancelled``, ``budget``, or ``gone``."""
        raise NotImplementedError

    def set_state(self, job_id: str, state: str) -> None:
        """Change a job's state; a final state records ``finished_at`` (first time only)."""
        raise NotImplementedError

    def progress(self, job_id: str, **counts: int) -> None:
        """Add to a job's counters (pages, errors, failed, ...)."""
        raise NotImplementedError

    def status(self, job_id: str) -> JobStatus:
        raise NotImplementedError

    # --- users and levels --------------------------------------------------------------
    @abc.abstractmethod
    def claim_users(self, job: JobArgs, uids: list[int], level: int, claimer: str = "") -> list[int]:
        """The users, in order, that are expanded now (first time, within max_users).

        ``claimer`` names what found them; the same claimer claiming again (its page
        was fetched again after a process died) gets them again, so no request is lost."""

    def claims_at_push(self, job: JobArgs) -> bool:
        """Whether the users a page of the job finds are claimed by the scheduler's push of their first page,
        not by :meth:`claim_users` (the Redis store, a job without max_users: ``lua/queue_push.lua``); then
        :meth:`not_known_claimed` says which first pages to build."""
        return False

    def not_known_claimed(self, job: JobArgs, uids: list[Any]) -> list[Any]:
        """Of ``uids`` (a :meth:`claims_at_push` job's), those not known here to be claimed already, in order."""
        return uids

    @abc.abstractmethod
    def expanded_count(self, job: JobArgs) -> int: ...

    @abc.abstractmethod
    def requests_opened(self, job: JobArgs, level: int, pages: list[str]) -> None:
        """Requests of a level that must finish before the next level (max_users mode only)."""

    @abc.abstractmethod
    def record_found(self, job: JobArgs, level: int, source: int, page_no: int, ids: list[int]) -> None: ...

    @abc.abstractmethod
    def request_done(self, job: JobArgs, level: int, page: str = "") -> list[int] | None:
        """Finish one request (``page``: its URL) of a level; when every request of the
        level has finished, the ids of the next level in BFS order (idempotent)."""

    # --- durability ------------------------------------------------------------------------
    def flush(self) -> None:
        """Make what was written so far durable (backends that batch writes)."""

    def close(self) -> None:
        self.flush()


def last_complete_level(pending_levels: set[int], failed_levels: set[int], depth: int, cut_level: int | None = None) -> int | None:
    """The deepest BFS level that is complete for the whole job: none of its requests, nor of any level
    before it, is still pending (queued, in flight, parked), none failed for good, and ``max_users`` did
    not cut it short. One rule for every backend (each says which levels are pending)."""
    blocked = pending_levels | failed_levels | ({cut_level} if cut_level else set())
    last = (min(blocked) if blocked else depth + 1) - 1
    return min(last, depth) if last >= 1 else None


# seconds between polls of the scraper while acks wait: a safety net, as next_request acks
# sooner (a poll every reactor turn kept the loop spinning while a response sat in the scraper)
ACK_POLL_INTERVAL = 0.05


class AckAfterScraping:
    """Scheduler mix-in: a request's :meth:`ack` takes effect once Scrapy's scraper is done with its response.

    The spider calls ``ack`` when its callback returns, but Scrapy pulls a callback's outputs
    up to ``2 × CONCURRENT_ITEMS`` ahead of processing them (``_parallel_asyncio``'s queue):
    at that moment the last item may not be written and the last request not queued yet. A
    request stays in the scraper's active set until all of its outputs are processed, so the
    ack waits for that. Subclasses implement :meth:`ack_done` and call ``acks_waiting`` at
    ``next_request`` (the engine calls it right after the scraper finishes a response, or when a download
    ends while all its slots were busy) and :meth:`close_acks` at ``close``; a timer polls every
    :data:`ACK_POLL_INTERVAL` s in between, while acks wait. ``ack_done`` may buffer (the Redis scheduler's go
    with its next pop)."""

    crawler: Any

    def ack(self, request: Request) -> None:
        waiting = self.__dict__.setdefault("_acks_waiting", [])
        waiting.append(request)
        self._arm_acks_poll()

    def ack_done(self, requests: list[Request]) -> None:
        """These requests' outputs have all been processed: acknowledge them (one round trip)."""
        raise NotImplementedError

    def acks_waiting(self) -> int:
        """Acknowledge what the scraper is done with; how many acks still wait."""
        waiting: list[Request] = self.__dict__.get("_acks_waiting") or []
        if not waiting:
            return 0
        slot = getattr(getattr(getattr(self.crawler, "engine", None), "scraper", None), "slot", None)
        active = slot.active if slot is not None else ()
        still = [r for r in waiting if r in active]
        if len(still) < len(waiting):
            self.ack_done([r for r in waiting if r not in active])
            self._acks_waiting = still
        return len(still)

    def close_acks(self) -> int:
        """At close: stop polling and acknowledge what the scraper is done with, and only that. A
        request whose outputs the scraper still holds (its close failed or was cut short) stays
        unacknowledged, so its lease gives it back (the Redis scheduler hands it to the queue, the
        local one keeps its row for the next run) instead of losing items never written. How many
        were left unacknowledged."""
        if self.__dict__.get("_acks_poll") is not None:
            self._acks_poll.cancel()
            self._acks_poll = None
        return self.acks_waiting()

    def _arm_acks_poll(self) -> None:
        if self.__dict__.get("_acks_poll") is None:
            self._acks_poll = call_later(ACK_POLL_INTERVAL, self._poll_acks)

    def _poll_acks(self) -> None:
        self._acks_poll = None
        if self.acks_waiting():
            self._arm_acks_poll()
