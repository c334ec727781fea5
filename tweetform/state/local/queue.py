"""Scrapy disk queues (``SCHEDULER_DISK_QUEUE``) as rows of the JOBDIR database, with leases.

Scrapy's priority queues make one downstream queue per priority (and per
endpoint, :class:`tweetform.state.local.priority_queue.QuotaAwarePriorityQueue`), each named
by a path under ``<JOBDIR>/requests.queue``; here that path names rows of one
``requests`` table. ``pop`` does not delete a row: it leases it (the request
carries the row id in ``meta``) and the scheduler's ``ack`` deletes it once the
page's output has been consumed. A request pushed again while it holds a lease
(a retry, a 429 waiting for its window: copies of the popped request, its
``meta`` with them) takes the place of its old row in the same transaction, so
new requests must not copy a popped request's ``meta`` (tweetform's spiders
build theirs with ``api_request``). Leases of a run that stopped go back to the
queue on open.
"""

from __future__ import annotations

import os
import pickle
from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.utils.job import job_dir
from scrapy.utils.request import request_from_dict

from tweetform.quota.gate import NO_ENDPOINT
from tweetform.requests_safety import strip_credentials
from tweetform.state.local.database import META_LEASE, Database, database, opened


class LeasedSqliteQueue:
    """LIFO within one priority, as Scrapy's default disk queue."""

    newest_first = True

    def __init__(self, crawler: Crawler, db: Database, name: str, owns_db: bool = False) -> None:
        self.crawler = crawler
        self.db = db
        self.name = name
        self.owns_db = owns_db  # opened for this queue alone (no JOBDIR: e.g. a test of the queue)
        order = "DESC" if self.newest_first else "ASC"
        self._next = f"SELECT id, data FROM requests WHERE queue = ? AND leased = 0 ORDER BY id {order} LIMIT 1"

    @classmethod
    def from_crawler(cls, crawler: Crawler, key: str) -> "LeasedSqliteQueue":
        # made again each time a priority's queue empties and fills: no filesystem calls here
        db = opened(crawler)
        if db is None and job_dir(crawler.settings):
            db = database(crawler)
        if db is not None:
            prefix = str(db.root) + os.sep
            return cls(crawler, db, key[len(prefix):] if key.startswith(prefix) else os.path.relpath(key, db.root))
        return cls(crawler, Database(key), ".", owns_db=True)

    @classmethod
    def stored_startprios(cls, crawler: Crawler) -> dict[str, list[int]]:
        """``{endpoint: priorities}`` of what is queued, for the priority queue to start from
        (Scrapy's ``active.json`` is written on a clean close only)."""
        out: dict[str, set[int]] = {}
        for endpoint, queue in database(crawler).query("SELECT DISTINCT endpoint, queue FROM requests"):
            out.setdefault(endpoint, set()).add(int(queue.rsplit("/", 1)[-1].rstrip("s")))
        return {endpoint: sorted(prios) for endpoint, prios in out.items()}

    def push(self, request: Request) -> None:
        data = strip_credentials(request_dict(request, self.crawler.spider))
        meta = data["meta"] = dict(data.get("meta") or {})
        held = meta.pop(META_LEASE, None)
        endpoint = meta.get("tweetform_endpoint") or NO_ENDPOINT
        try:
            blob = pickle.dumps(data, protocol=5)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise ValueError(str(exc)) from exc  # Scrapy's scheduler keeps it in memory instead
        self.db.execute("INSERT INTO requests (queue, endpoint, data) VALUES (?, ?, ?)", (self.name, endpoint, blob))
        if held is not None:  # queued again while leased: the new row replaces the old one
            self.db.execute("DELETE FROM requests WHERE id = ?", (held,))
            self.db.leased.discard(held)
        self.db.waiting[self.name] = self.db.waiting.get(self.name, 0) + 1

    def pop(self) -> Request | None:
        row = self.db.query(self._next, (self.name,))
        if not row:
            return None
        lease, data = row[0]
        self.db.execute("UPDATE requests SET leased = 1 WHERE id = ?", (lease,))
        self.db.leased.add(lease)
        self.db.waiting[self.name] -= 1
        request = request_from_dict(pickle.loads(data), spider=self.crawler.spider)
        request.meta[META_LEASE] = lease
        return request

    def close(self) -> None:
        # a crawl's database commits at each ack and when the crawl ends, not when a queue empties
        if self.owns_db:
            self.db.close()

    def __len__(self) -> int:
        return self.db.waiting.get(self.name, 0)


class LeasedSqliteFifoQueue(LeasedSqliteQueue):
    """FIFO: start requests go in the order the spider yields them (``SCHEDULER_START_DISK_QUEUE``)."""

    newest_first = False


def request_dict(request: Request, spider: Any) -> dict[str, Any]:
    """``request.to_dict(spider=spider)``, finding the callback's name by attribute: Scrapy's
    ``inspect.getmembers`` search costs ~0.25 ms per request, most of what a queued row costs."""
    try:
        names = {k: method_name(spider, getattr(request, k)) for k in ("callback", "errback")}
    except LookupError:
        return request.to_dict(spider=spider)
    # the rest as Request.to_dict builds it
    data = {"url": request.url, **names, "headers": dict(request.headers)}
    for attr in request.attributes:
        data.setdefault(attr, getattr(request, attr))
    if type(request) is not Request:
        data["_class"] = f"{type(request).__module__}.{type(request).__name__}"
    return data


def method_name(spider: Any, func: Any) -> Any:
    if func is None or not callable(func):
        return func
    name = getattr(func, "__name__", "")
    bound = getattr(spider, name, None) if name and getattr(func, "__self__", None) is spider else None
    if bound is None or getattr(bound, "__func__", None) is not getattr(func, "__func__", bound):
        raise LookupError(name)  # not a plain method of the spider: Scrapy's own search decides
    return name


def queued_depths(db: Database) -> set[int]:
    """The BFS levels (``tweetform_ctx`` depth) of every request still queued or leased: the levels that are
    not complete (read when a crawl closes: one pass over what is left)."""
    found: set[int] = set()
    for (data,) in db.query("SELECT data FROM requests"):
        ctx = (pickle.loads(data).get("meta") or {}).get("tweetform_ctx") or {}
        if isinstance(ctx.get("depth"), int):
            found.add(ctx["depth"])
    return found
