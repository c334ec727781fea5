"""The SQLite file of a local job in Scrapy's ``JOBDIR``: one connection per process.

Everything a resumed job needs lives in ``<JOBDIR>/tweetform.sqlite`` — the job
(arguments, id, state, counters), its user claims and BFS levels, the request
queue with leases and the dupe filter's fingerprints — so one transaction
covers a page's whole effect: the requests it queued, the users it claimed and
its own acknowledgement. A crash loses at most the uncommitted tail of that
history, never half of it (Scrapy's own JOBDIR queues are written on close
only, and its ``requests.seen`` at enqueue: a SIGKILL loses what was popped).

WAL with ``synchronous=NORMAL``: a commit is a write to the WAL file, no fsync,
durable against the process being killed (not against power loss). The
transaction is committed at each acknowledgement (:meth:`Database.ack`) and on
close; a lease left by a killed process goes back to the queue on open.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
from pathlib import Path
from typing import Any, Iterable

from scrapy.crawler import Crawler

from tweetform.crawler_state import state_of

logger = logging.getLogger(__name__)
FILENAME = "tweetform.sqlite"
LOCKNAME = "tweetform.lock"
META_LEASE = "tweetform_lease"  # request.meta: the queue row a popped request holds

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
  job TEXT PRIMARY KEY, args TEXT NOT NULL, state TEXT NOT NULL, created REAL, finished_at REAL);
CREATE TABLE IF NOT EXISTS counters (
  job TEXT NOT NULL, name TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (job, name)) WITHOUT ROWID;
-- one row per claim call, in claim order (rowid: BFS order of a level), the users it claimed
-- first packed as unsigned 64-bit integers; a user once per job (kept so in memory)
CREATE TABLE IF NOT EXISTS claims (
  job TEXT NOT NULL, level INTEGER NOT NULL, claimer INTEGER NOT NULL, uids BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS level_pages (
  job TEXT NOT NULL, level INTEGER NOT NULL, page TEXT NOT NULL,
  opened INTEGER NOT NULL DEFAULT 0, done INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (job, level, page)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS level_found (
  job TEXT NOT NULL, level INTEGER NOT NULL, source INTEGER NOT NULL, page_no INTEGER NOT NULL, ids TEXT NOT NULL,
  PRIMARY KEY (job, level, source, page_no)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS requests (
  id INTEGER PRIMARY KEY, queue TEXT NOT NULL, endpoint TEXT NOT NULL, data BLOB NOT NULL,
  leased INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS requests_waiting ON requests (queue, leased, id);
CREATE TABLE IF NOT EXISTS seen (fp BLOB PRIMARY KEY) WITHOUT ROWID;
-- resources the job was billed for, per app and UTC day (tweetform.cost.billed): counted once across runs;
-- billed_ids holds a page's new ids in one row (newline-separated: one insert a page, not one an id), billed the
-- rows of an older tweetform (read, then emptied with its days)
CREATE TABLE IF NOT EXISTS billed (
  app TEXT NOT NULL, kind TEXT NOT NULL, day TEXT NOT NULL, id TEXT NOT NULL,
  PRIMARY KEY (day, app, kind, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS billed_ids (app TEXT NOT NULL, kind TEXT NOT NULL, day TEXT NOT NULL, ids TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS billed_ids_day ON billed_ids (day);
-- the rate-limit windows the job's answers reported (tweetform.state.local.quota): a resumed run waits for them
CREATE TABLE IF NOT EXISTS quota (
  alias TEXT NOT NULL, kind TEXT NOT NULL, endpoint TEXT NOT NULL, lim INTEGER NOT NULL, reset REAL NOT NULL,
  remaining INTEGER NOT NULL, PRIMARY KEY (alias, kind, endpoint)) WITHOUT ROWID;
"""


SCHEMA_VERSION = 1  # PRAGMA user_version of the file


class JobDirBusy(RuntimeError):
    """Another process works on this JOBDIR."""


class JobDirUnreadable(RuntimeError):
    """The JOBDIR's database was written by another version of tweetform."""


def path_in(jobdir: str | os.PathLike[str]) -> Path:
    return Path(jobdir) / FILENAME


class Database:
    """One SQLite connection, one open transaction at a time (committed by :meth:`commit`)."""

    def __init__(self, jobdir: str | os.PathLike[str]) -> None:
        root = self.root = Path(jobdir)
        root.mkdir(parents=True, exist_ok=True)
        self._lock = os.open(root / LOCKNAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock)
            raise JobDirBusy(f"JOBDIR {jobdir} is in use by another process") from None
        self.path = root / FILENAME
        # isolation_level=None: transactions are begun and committed here, not by the module
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            self.conn.close()
            os.close(self._lock)
            raise JobDirUnreadable(f"JOBDIR {jobdir} was written by another tweetform version (schema {version})")
        self.conn.executescript(SCHEMA)
        self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._in_tx = False
        self.commits = 0
        # requests waiting (not leased) per queue name: the queues' lengths without a query
        self.waiting: dict[str, int] = {}
        self.leased: set[int] = set()  # rows this process popped and has not acknowledged
        # this process holds the lock: every lease in the file belongs to a run that ended
        returned = self.execute("UPDATE requests SET leased = 0 WHERE leased = 1").rowcount
        self.commit()
        self.waiting.update(self.query("SELECT queue, COUNT(*) FROM requests GROUP BY queue"))
        if returned:
            logger.info("%d requests in flight when the last run stopped go back to the queue", returned)

    def execute(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        if not self._in_tx:
            self.conn.execute("BEGIN")
            self._in_tx = True
        return self.conn.execute(sql, tuple(params))

    def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        if not self._in_tx:
            self.conn.execute("BEGIN")
            self._in_tx = True
        self.conn.executemany(sql, rows)

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, tuple(params)).fetchall()

    def commit(self) -> None:
        if self._in_tx:
            self.conn.execute("COMMIT")
            self._in_tx = False
            self.commits += 1

    def ack_many(self, leases: Iterable[int]) -> None:
        """Pages whose output has been consumed: their queue rows go, committed with everything they caused."""
        for lease in leases:
            self.execute("DELETE FROM requests WHERE id = ?", (lease,))
            self.leased.discard(lease)
        self.commit()

    def close(self) -> None:
        if self.conn is None:
            return
        self.commit()
        self.conn.close()
        self.conn = None  # type: ignore[assignment]
        os.close(self._lock)


def opened(crawler: Crawler) -> Database | None:
    """The crawler's database if it is open."""
    return state_of(crawler).database


def database(crawler: Crawler) -> Database:
    """The crawler's database in its JOBDIR (opened on first use, closed with the spider)."""
    held = state_of(crawler)
    if held.database is None:
        from scrapy import signals
        from scrapy.utils.job import job_dir

        jobdir = job_dir(crawler.settings)
        if not jobdir:
            raise RuntimeError("no JOBDIR: the local backend keeps its state in memory")
        held.database = Database(jobdir)
        # last of all: the scheduler and pipelines close first, then their writes are committed
        crawler.signals.connect(lambda: _close(crawler), signal=signals.engine_stopped, weak=False)
    return held.database


def _close(crawler: Crawler) -> None:
    held = state_of(crawler)
    if held.database is not None:
        held.database.close()
        held.database = None
