"""Which job a ``scrapy crawl … -s JOBDIR=dir`` continues (checked before the crawl starts).

The first run saves its job (id and arguments) in the JOBDIR database; running
the same command again continues that job id. Other arguments — except
``budget``, which may be raised to go on — are a different job: one line, exit 2.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import sqlite3
from typing import Any

from tweetform.config import uses_redis
from tweetform.job import ArgumentError, JobArgs
from tweetform.state.local.database import LOCKNAME, SCHEMA_VERSION, path_in
from tweetform.state.local.sqlite import job_from_json

MAY_CHANGE = frozenset({"job", "budget"})  # job: generated when not given


def saved_job(jobdir: str) -> JobArgs | None:
    path = path_in(jobdir)
    if not path.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                raise ArgumentError(f"JOBDIR {jobdir} was written by another tweetform version (schema {version}); "
                                    "use another JOBDIR")
            rows = conn.execute("SELECT args FROM jobs ORDER BY created LIMIT 1").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise ArgumentError(f"JOBDIR {jobdir}: {path.name} is not a tweetform job database ({exc})") from None
    return job_from_json(rows[0][0]) if rows else None


def check_free(jobdir: str) -> None:
    lock = os.path.join(jobdir, LOCKNAME)
    if not os.path.exists(lock):
        return
    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ArgumentError(f"JOBDIR {jobdir} is in use by another crawl") from None
    finally:
        os.close(fd)  # releases the lock, if taken


def resumed_job(settings: Any, job: JobArgs, given: dict[str, Any]) -> JobArgs:
    """``job`` as this command runs it: the JOBDIR's job id when it continues one.

    Raises ArgumentError (one line) when the JOBDIR holds a different job."""
    jobdir = settings.get("JOBDIR") or None  # not job_dir(): it would create the directory before the crawl is checked
    if not jobdir or uses_redis(settings):
        return job  # no JOBDIR, or ignored (distributed jobs live in Redis)
    check_free(jobdir)
    saved = saved_job(jobdir)
    if saved is None:
        return job
    if "job" in given and str(given["job"]) != saved.job:
        raise ArgumentError(f"JOBDIR {jobdir} holds job {saved.job}, not {given['job']}; "
                            "use another JOBDIR for a new job")
    now = dataclasses.asdict(job)
    differ = [(k, v, now.get(k)) for k, v in dataclasses.asdict(saved).items() if k not in MAY_CHANGE and now.get(k) != v]
    if differ:
        shown = ", ".join(f"{k} was {_show(old)}, now {_show(new)}" for k, old, new in differ)
        raise ArgumentError(f"JOBDIR {jobdir} holds job {saved.job} with other arguments ({shown}); "
                            "run the same command to resume it, or use another JOBDIR")
    return dataclasses.replace(job, job=saved.job)


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value[:5]) + (f",… ({len(value)})" if len(value) > 5 else "") or "none"
    return "none" if value is None else str(value)
