"""Upgrading a Redis an older tweetform used: its plain SETs folded into today's compact sets.

Before issue 15 (commit 4036558) a job's dupe filter (``keys.dupefilter_before``: hex fingerprints),
its written pages (``keys.written_before``: hex page ids) and each day's billed ids (1,024 SETs
``keys.cost_seen_before`` per app and kind) were plain SETs. Today's code reads only the compact
sets (``compact.py``), so a job started before the upgrade and continued after it would fetch,
write and bill again what those SETs held. They are folded into the compact form before a process
uses them: a job's when the process first meets the job (:func:`open_job`, from the Redis job
store and the bucket pipeline, so workers, ``scrapy crawl`` and ``scrapy collect`` all do it), the
billed ids when a process opens its shared cost ledger (:func:`billed_ids`), everything at once
with ``scrapy admin migrate`` (:func:`migrate_all`).

``lua/legacy_fold.lua`` moves a batch at a time: a member leaves the old SET in the step that adds
it to the compact set, so several workers starting at once, or one dying half-way, lose and
double nothing, and a caller returns only once the old SET is gone (all of it folded).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from tweetform.state.redis import compact, keys, scripts

BATCH = 2000  # members moved per script call (a short step: other clients wait while it runs)
BILLED = "billed-ids"  # the migrations hash's field once the billed ids are folded


@dataclass
class Folded:
    """How many members this call moved (another process folding at once moves the rest)."""

    fingerprints: int = 0
    pages: int = 0
    billed: int = 0

    def __iadd__(self, other: "Folded") -> "Folded":
        self.fingerprints += other.fingerprints
        self.pages += other.pages
        self.billed += other.billed
        return self


def fold(server: Any, old: str, layout: str, kind: str, load: int, ttl: int | None = None) -> int:
    """Fold the old SET ``old`` into the compact set ``layout`` until it is gone; members this call moved."""
    script = scripts.load(server, "legacy_fold")
    moved = 0
    while True:
        now, left = script(keys=[old, layout], args=[compact.bucket_prefix(layout), load, kind, BATCH, "" if ttl is None else ttl])
        moved += int(now)
        if not int(left):
            return moved


def open_job(server: Any, job_id: str, spider: str | None = None) -> Folded:
    """A process meets a job: fold its old dupe-filter and written-pages SETs if it has any (one round
    trip when it has none, the usual case)."""
    if spider is None:
        spider = str(json.loads(server.hget(keys.job(job_id), "args") or "{}").get("spider") or "")
    old_filter, old_written = keys.dupefilter_before(spider, job_id), keys.written_before(job_id)
    pipe = server.pipeline(transaction=False)
    pipe.exists(old_filter)
    pipe.exists(old_written)
    has_filter, has_written = pipe.execute()
    done = Folded()
    if has_filter:
        done.fingerprints = fold(server, old_filter, keys.dupefilter(spider, job_id), "digest", compact.hash_load(server))
    if has_written:
        done.pages = fold(server, old_written, keys.written(job_id), "digest", compact.hash_load(server))
    return done


def billed_ids(server: Any, ttl: int, again: bool = False) -> int:
    """Fold the billed-ids SETs of an older tweetform (found with one SCAN, the first time a process of
    this Redis looks; ``again``: look even if done before) into each app, kind and day's compact set
    (``ttl``: the new sets' lifetime, the cost ledger's). Ids this call moved."""
    if not again and server.hexists(keys.migrations(), BILLED):
        return 0
    load, moved = compact.set_load(server), 0
    for raw in server.scan_iter(match=keys.COST_SEEN_BEFORE + "*", count=1000):
        old = raw.decode() if isinstance(raw, bytes) else raw
        parts = keys.cost_seen_before_parts(old)
        if parts is not None:
            moved += fold(server, old, keys.cost_seen(*parts), "decimal", load, ttl)
    server.hset(keys.migrations(), BILLED, time.time())
    return moved


def migrate_all(server: Any, billed_ttl: int) -> tuple[int, Folded]:
    """``scrapy admin migrate``: every job Redis knows, then the billed ids: (jobs looked at, moved)."""
    done, jobs = Folded(), 0
    for raw in server.zrange(keys.jobs(), 0, -1):
        done += open_job(server, raw.decode() if isinstance(raw, bytes) else raw)
        jobs += 1
    done.billed = billed_ids(server, billed_ttl, again=True)
    return jobs, done
