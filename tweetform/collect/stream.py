"""A job's page stream in Redis: how a page travels from a worker to ``scrapy collect``.

Each entry carries what the bucket writer needs to write the page exactly as a
local crawl would: ``prov`` (the provenance JSON), and ``raw`` (the body as the
API sent it) or, for records without a body (errors), ``item`` (the whole item
as JSON); ``n`` is the entry's size in bytes, the unit of the cap.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import orjson

from tweetform.items import PROVENANCE, PageItem
from tweetform.pipelines.buckets import dumps
from tweetform.state.redis import keys

GROUP = "collector"  # the consumer group every collector reads through (one at a time: the lock)
LUA = Path(__file__).with_name("lua")


def loads(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)  # e.g. integers past 64 bits, which orjson refuses


@functools.cache
def _source(name: str) -> str:
    """A script of ``lua/``; ``-- include: NAME`` pulls in a script of the Redis backend's."""
    from tweetform.state.redis import scripts

    lines = []
    for line in (LUA / f"{name}.lua").read_text().splitlines():
        if line.startswith("-- include: "):
            lines.append(scripts.source(line.removeprefix("-- include: ").strip()))
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def script(server: Any, name: str) -> Any:
    """A registered Lua script of this package (sent once, then called by digest)."""
    return server.register_script(_source(name))


def entry_for(item: PageItem) -> tuple[dict[str, bytes], int]:
    """The stream fields of a page and its size in bytes (also in the entry, as ``n``)."""
    fields = {"prov": dumps(item[PROVENANCE])}
    raw = getattr(item, "raw", None)
    if raw:
        fields["raw"] = bytes(raw)
    else:
        fields["item"] = dumps(dict(item))
    if getattr(item, "failure_counted", False):
        fields["counted"] = b"1"  # a dead-lettered request: queue_reap.lua counted its failure already
    size = sum(len(v) for v in fields.values())
    fields["n"] = str(size).encode()
    return fields, size


def item_from(fields: dict[bytes, bytes]) -> PageItem:
    """The page an entry carries, as the spider yielded it (body, provenance, raw bytes)."""
    raw = fields.get(b"raw")
    if raw is None:
        item = PageItem(loads(fields[b"item"]))
    else:
        body = loads(raw)
        item = PageItem(body if isinstance(body, dict) else {"page": body})
        item[PROVENANCE] = loads(fields[b"prov"])
        item.raw = raw
    if fields.get(b"counted"):
        item.failure_counted = True
    return item


def waiting(server: Any, job_id: str) -> tuple[int, int]:
    """``(pages, bytes)`` of a job still waiting in Redis for the collector."""
    pages, size = server.hmget(keys.pages_waiting(job_id), "pages", "bytes")
    return int(pages or 0), int(size or 0)


def pages_waiting(server: Any, job_id: str) -> int:
    """How many of a job's pages are not yet on the collector's disk (0 without collect mode).

    A job is done only when this is 0 (``job_check_done`` in the Redis backend's
    ``lua/job_common.lua`` checks it; the collector's ack checks the job again)."""
    return waiting(server, job_id)[0]
