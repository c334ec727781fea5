"""What spiders yield: one API page (or one error record) with its provenance.

An item is a plain dict (so Scrapy feed exports write it as it is): the page
object as the API sent it plus a ``__tweetform`` provenance object. The raw
bytes of the body ride along as an attribute so the bucket pipeline can write
the page byte-for-byte instead of re-serializing it.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any

PROVENANCE = "__tweetform"


class PageItem(dict):
    """``{**page, "__tweetform": {...}}``; ``raw`` holds the body as received."""

    raw: bytes | None = None
    failure_counted = False  # a failed page already counted in its job's progress (a dead-lettered request)
    skipped = False  # set by the bucket pipeline: the job had written this page already (not written again)
    delivery: Any = None  # how the worker got the page's request (state.redis.node.Delivery; not written out)

    @property
    def provenance(self) -> dict[str, Any]:
        return self[PROVENANCE]


def page_id(job: str, bucket: str, key: str, url: str) -> str:
    """Identity of a page: the same request of the same job always gives the same id.

    The job is part of it, so a later job crawling the same lists (the same URLs)
    writes its own pages; within one job a re-fetched page is written once."""
    return hashlib.sha1(f"{job}\n{bucket}\n{key}\n{url}".encode()).hexdigest()[:20]


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_page(body: Any, raw: bytes | None, provenance: dict[str, Any]) -> PageItem:
    """Wrap a parsed body; a JSON array (v1.1 timelines, look-ups) goes under ``page``."""
    item = PageItem(body) if isinstance(body, dict) else PageItem(page=body)
    item[PROVENANCE] = provenance
    item.raw = raw if isinstance(body, dict) else (b'{"page":' + raw + b"}" if raw is not None else None)
    return item


def make_error(reason: str, target: str, status: int, code: int | None, message: str, body: Any, provenance: dict[str, Any]) -> PageItem:
    """An ``errors`` bucket record: what could not be collected and why (not retried)."""
    item = PageItem(reason=reason, id=target, status=status, code=code, message=message, response=body)
    item[PROVENANCE] = provenance
    return item
