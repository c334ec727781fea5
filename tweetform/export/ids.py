"""Dehydrate a bucket: the ids of the tweets, users or lists its pages hold, one per line.

X's terms let researchers share datasets as ids only (others hydrate them again with
the ``tweets`` or ``users`` spider). Each id is written once, in the order first seen;
``includes`` are left out (they are context, not what was collected), and so are the
errors bucket and pages without objects (counts). Bluesky pages give DIDs (accounts) and
``at://`` post URIs (posts; an author feed's repost, the reposted post's), which the ``users``
and ``tweets`` spiders hydrate with ``-a api=bluesky``.
"""

from __future__ import annotations

from typing import Any, Iterable, TextIO

from tweetform.export import bluesky
from tweetform.items import PROVENANCE


def ids_of_page(page: dict[str, Any]) -> list[str]:
    """The object ids of one written page of either API version."""
    prov = page.get(PROVENANCE) if isinstance(page.get(PROVENANCE), dict) else {}
    if prov.get("bucket") == "errors" or "reason" in page:
        return []
    if prov.get("api_version") == bluesky.BLUESKY:
        return bluesky.ids_of_page(page)
    if isinstance(page.get("ids"), list):  # v1.1 friends/ids, followers/ids
        return [str(i) for i in page["ids"]]
    for key in ("data", "page", "users", "statuses"):
        found = page.get(key)
        if isinstance(found, dict) and key == "data":
            found = [found]
        if isinstance(found, list):
            return [str(o.get("id_str") or o["id"]) for o in found if isinstance(o, dict) and (o.get("id_str") or o.get("id"))]
    if isinstance(page.get("id"), dict):  # statuses/lookup with map=true
        return [tid for tid, tweet in page["id"].items() if tweet]
    return []


def write_ids(pages: Iterable[dict[str, Any]], out: TextIO) -> tuple[int, int]:
    """Write each id once; ``(ids written, duplicates skipped)``."""
    seen: set[str] = set()
    duplicates = 0
    for page in pages:
        for oid in ids_of_page(page):
            if oid in seen:
                duplicates += 1
                continue
            seen.add(oid)
            out.write(oid + "\n")
    return len(seen), duplicates
