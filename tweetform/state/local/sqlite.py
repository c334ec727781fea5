"""Job state of one process kept in its ``JOBDIR`` (see :mod:`tweetform.state.local.database`).

Reads are served from memory (the :class:`MemoryJobStore` it extends, loaded from
the file on open); every change is also written to the open transaction, which
the page's acknowledgement commits with the rest of what the page did.
"""

from __future__ import annotations

import dataclasses
import json
from array import array

from tweetform.job import JobArgs
from tweetform.state.base import FINAL_STATES, RUNNING, JobStatus
from tweetform.state.local.database import Database
from tweetform.state.local.memory import MemoryJobStore, NetworkLevels


def job_from_json(raw: str) -> JobArgs:
    known = {f.name for f in dataclasses.fields(JobArgs)}
    return JobArgs(**{k: v for k, v in json.loads(raw).items() if k in known})


class SqliteJobStore(MemoryJobStore):
    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db
        self._load()

    def _load(self) -> None:
        for job_id, args, state, created, finished_at in self.db.query("SELECT job, args, state, created, finished_at FROM jobs"):
            self.jobs[job_id] = job_from_json(args)
            self.statuses[job_id] = JobStatus(job_id, state, created, finished_at)
        for job_id, name, n in self.db.query("SELECT job, name, n FROM counters"):
            self.statuses.setdefault(job_id, JobStatus(job_id, RUNNING)).counters[name] = n
        for job_id, level, claimer, packed in self.db.query("SELECT job, level, claimer, uids FROM claims ORDER BY rowid"):
            uids = array("Q", packed).tolist()
            self.expanded.setdefault(job_id, {}).update(dict.fromkeys(uids, claimer))
            job = self.jobs.get(job_id)
            if job is not None and job.by_levels:
                self.levels.setdefault(job_id, NetworkLevels()).users.setdefault(level, []).extend(uids)
        for job_id, level, page, opened, done in self.db.query("SELECT job, level, page, opened, done FROM level_pages"):
            levels = self.levels.setdefault(job_id, NetworkLevels())
            if opened:
                levels.opened.setdefault(level, set()).add(page)
            if done:
                levels.done.setdefault(level, set()).add(page)
        for job_id, level, source, page_no, ids in self.db.query("SELECT job, level, source, page_no, ids FROM level_found"):
            found = self.levels.setdefault(job_id, NetworkLevels()).found.setdefault(level, {})
            found.setdefault(source, {})[page_no] = json.loads(ids)

    # --- jobs ----------------------------------------------------------------------
    def save(self, job: JobArgs) -> None:
        known = job.job in self.statuses
        super().save(job)
        args = json.dumps(dataclasses.asdict(job))
        if known:  # a resumed job: same arguments, except what may change between runs (budget)
            self.db.execute("UPDATE jobs SET args = ? WHERE job = ?", (args, job.job))
        else:
            self.db.execute("INSERT INTO jobs (job, args, state, created) VALUES (?, ?, ?, ?)",
                            (job.job, args, RUNNING, self.statuses[job.job].created))
        self.db.commit()

    def set_state(self, job_id: str, state: str) -> None:
        super().set_state(job_id, state)
        status = self.statuses[job_id]
        self.db.execute("UPDATE jobs SET state = ?, finished_at = ? WHERE job = ?", (state, status.finished_at, job_id))
        if state in FINAL_STATES:
            self.db.commit()

    def progress(self, job_id: str, **counts: int) -> None:
        super().progress(job_id, **counts)
        self.db.executemany(
            "INSERT INTO counters (job, name, n) VALUES (?, ?, ?) ON CONFLICT (job, name) DO UPDATE SET n = n + excluded.n",
            [(job_id, name, n) for name, n in counts.items()])

    # --- users and levels --------------------------------------------------------------
    def claim_users(self, job: JobArgs, uids: list[int], level: int, claimer: str = "") -> list[int]:
        seen = self.expanded.setdefault(job.job, {})
        before = len(seen)
        claimed = super().claim_users(job, uids, level, claimer)
        if len(seen) > before:  # new claims are the last ones added (dicts keep insertion order)
            new = _tail(seen, len(seen) - before)  # one claimer for all of them: this call's
            self.db.execute("INSERT INTO claims (job, level, claimer, uids) VALUES (?, ?, ?, ?)",
                            (job.job, level, new[0][1], array("Q", [uid for uid, _ in new]).tobytes()))
        return claimed

    def requests_opened(self, job: JobArgs, level: int, pages: list[str]) -> None:
        super().requests_opened(job, level, pages)
        self.db.executemany("INSERT INTO level_pages (job, level, page, opened) VALUES (?, ?, ?, 1) "
                            "ON CONFLICT (job, level, page) DO UPDATE SET opened = 1",
                            [(job.job, level, page) for page in pages])

    def record_found(self, job: JobArgs, level: int, source: int, page_no: int, ids: list[int]) -> None:
        super().record_found(job, level, source, page_no, ids)
        self.db.execute("INSERT OR REPLACE INTO level_found (job, level, source, page_no, ids) VALUES (?, ?, ?, ?, ?)",
                        (job.job, level, source, page_no, json.dumps(ids)))

    def request_done(self, job: JobArgs, level: int, page: str = "") -> list[int] | None:
        self.db.execute("INSERT INTO level_pages (job, level, page, done) VALUES (?, ?, ?, 1) "
                        "ON CONFLICT (job, level, page) DO UPDATE SET done = 1", (job.job, level, page))
        return super().request_done(job, level, page)

    def has_queued(self) -> bool:
        return bool(self.db.query("SELECT 1 FROM requests LIMIT 1"))

    # --- durability ------------------------------------------------------------------------
    def flush(self) -> None:
        self.db.commit()

    def close(self) -> None:
        self.db.commit()


def _tail(seen: dict[int, int], n: int) -> list[tuple[int, int]]:
    """The last ``n`` items of a dict without copying the whole of it."""
    out = []
    for item in reversed(seen.items()):
        out.append(item)
        if len(out) == n:
            break
    out.reverse()
    return out
