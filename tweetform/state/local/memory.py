"""Job state in memory: one process, nothing kept after it ends (no ``JOBDIR``)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

from tweetform.job import JobArgs
from tweetform.state.base import FINAL_STATES, GONE, RUNNING, JobStatus, JobStore


@dataclass
class NetworkLevels:
    users: dict[int, list[int]] = field(default_factory=dict)  # level -> users in BFS order
    opened: dict[int, set[str]] = field(default_factory=dict)  # level -> request keys opened
    done: dict[int, set[str]] = field(default_factory=dict)  # level -> request keys finished
    found: dict[int, dict[int, dict[int, list[int]]]] = field(default_factory=dict)  # level -> user -> page -> ids


def claimer_tag(claimer: str) -> int:
    """What claimed a user, in 8 bytes: a page URL is ~100 (and a JOBDIR keeps one per user)."""
    return int.from_bytes(hashlib.blake2b(claimer.encode(), digest_size=8).digest(), "big", signed=True)


class MemoryJobStore(JobStore):
    def __init__(self) -> None:
        super().__init__()
        self.expanded: dict[str, dict[int, int]] = {}  # job -> user -> claimer_tag of what claimed it
        self.levels: dict[str, NetworkLevels] = {}
        self.statuses: dict[str, JobStatus] = {}

    def save(self, job: JobArgs) -> None:
        self.jobs[job.job] = job
        self.statuses.setdefault(job.job, JobStatus(job.job, RUNNING, created=time.time()))

    def load(self, job_id: str) -> JobArgs | None:
        return self.jobs.get(job_id)

    def state(self, job_id: str) -> str:
        found = self.statuses.get(job_id)
        return found.state if found else GONE

    def set_state(self, job_id: str, state: str) -> None:
        found = self.statuses.setdefault(job_id, JobStatus(job_id, state, created=time.time()))
        found.state = state
        if state in FINAL_STATES and found.finished_at is None:
            found.finished_at = time.time()

    def progress(self, job_id: str, **counts: int) -> None:
        counters = self.statuses.setdefault(job_id, JobStatus(job_id, RUNNING, created=time.time())).counters
        for name, n in counts.items():
            counters[name] = counters.get(name, 0) + n

    def status(self, job_id: str) -> JobStatus:
        found = self.statuses.get(job_id)
        if found is None:
            return JobStatus(job_id, GONE)
        return JobStatus(found.job, found.state, found.created, found.finished_at, dict(found.counters))

    def has_queued(self) -> bool:
        """Requests of this store's jobs still queued (in memory: Scrapy's scheduler holds them, and a
        crawl that finished has none)."""
        return False

    def claim_users(self, job: JobArgs, uids: list[int], level: int, claimer: str = "") -> list[int]:
        seen = self.expanded.setdefault(job.job, {})
        tag = claimer_tag(claimer or f"level:{level}")
        claimed = []
        for uid in uids:
            owner = seen.get(uid)
            if owner is not None:
                if owner == tag:
                    claimed.append(uid)
                continue
            if job.claim_cap is not None and len(seen) >= job.claim_cap:
                continue
            seen[uid] = tag
            claimed.append(uid)
            if job.by_levels:
                self.levels.setdefault(job.job, NetworkLevels()).users.setdefault(level, []).append(uid)
        return claimed

    def expanded_count(self, job: JobArgs) -> int:
        return len(self.expanded.get(job.job, ()))

    def requests_opened(self, job: JobArgs, level: int, pages: list[str]) -> None:
        levels = self.levels.setdefault(job.job, NetworkLevels())
        levels.opened.setdefault(level, set()).update(pages)

    def record_found(self, job: JobArgs, level: int, source: int, page_no: int, ids: list[int]) -> None:
        levels = self.levels.setdefault(job.job, NetworkLevels())
        levels.found.setdefault(level, {}).setdefault(source, {})[page_no] = ids

    def request_done(self, job: JobArgs, level: int, page: str = "") -> list[int] | None:
        levels = self.levels.setdefault(job.job, NetworkLevels())
        levels.done.setdefault(level, set()).add(page)
        if len(levels.done[level]) < len(levels.opened.get(level, ())):
            return None
        found = levels.found.get(level, {})
        ordered: list[int] = []
        for uid in levels.users.get(level, []):
            pages = found.get(uid, {})
            for page_no in sorted(pages):
                ordered.extend(pages[page_no])
        return ordered
