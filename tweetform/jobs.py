"""Job state: the arguments of each job and what it has expanded so far.

A spider may work on several jobs at once (in distributed mode, whatever jobs
are in Redis). Everything a job must remember across requests goes through a
:class:`JobStore`: in one process it lives in memory (:class:`LocalJobStore`);
with ``REDIS_URL`` it lives in Redis so every worker shares it
(:class:`tweetform.distributed.jobs.RedisJobStore`).

Network crawls with ``max_users`` expand level by level: each level's users in
breadth-first order, and the next level is assembled only when every request
of the current one has finished, so exactly the first ``max_users`` users in
BFS order are expanded whatever order the pages arrive in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tweetform.spiders.arguments import JobArgs


@dataclass
class NetworkLevels:
    users: dict[int, list[int]] = field(default_factory=dict)  # level -> users in BFS order
    opened: dict[int, set[str]] = field(default_factory=dict)  # level -> request keys opened
    done: dict[int, set[str]] = field(default_factory=dict)  # level -> request keys finished
    found: dict[int, dict[int, dict[int, list[int]]]] = field(default_factory=dict)  # level -> user -> page -> ids


class JobStore:
    """Interface (and in-memory implementation) of per-job state."""

    def __init__(self) -> None:
        self.jobs: dict[str, JobArgs] = {}
        self.expanded: dict[str, set[int]] = {}
        self.levels: dict[str, NetworkLevels] = {}

    def save(self, job: JobArgs) -> None:
        self.jobs[job.job] = job

    def load(self, job_id: str) -> JobArgs | None:
        return self.jobs.get(job_id)

    def claim_users(self, job: JobArgs, uids: list[int], level: int, claimer: str = "") -> list[int]:
        """The users, in order, that are expanded now (first time, within max_users).

        ``claimer`` names what found them; the Redis store lets the same claimer
        claim again, for pages fetched twice after a worker died."""
        seen = self.expanded.setdefault(job.job, set())
        claimed = []
        for uid in uids:
            if uid in seen or (job.max_users is not None and len(seen) >= job.max_users):
                continue
            seen.add(uid)
            claimed.append(uid)
        if job.max_users is not None:
            self.levels.setdefault(job.job, NetworkLevels()).users.setdefault(level, []).extend(claimed)
        return claimed

    def expanded_count(self, job: JobArgs) -> int:
        return len(self.expanded.get(job.job, ()))

    def requests_opened(self, job: JobArgs, level: int, pages: list[str]) -> None:
        """Requests of a level that must finish before the next level (max_users mode only)."""
        levels = self.levels.setdefault(job.job, NetworkLevels())
        levels.opened.setdefault(level, set()).update(pages)

    def record_found(self, job: JobArgs, level: int, source: int, page_no: int, ids: list[int]) -> None:
        levels = self.levels.setdefault(job.job, NetworkLevels())
        levels.found.setdefault(level, {}).setdefault(source, {})[page_no] = ids

    def request_done(self, job: JobArgs, level: int, page: str = "") -> list[int] | None:
        """Finish one request (``page``: its URL) of a level; when every request of the
        level has finished, the ids of the next level in BFS order (idempotent)."""
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


LocalJobStore = JobStore
