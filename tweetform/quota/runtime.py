"""One credential pool, one quota book and one quota gate per crawler, shared by the components that need them."""

from __future__ import annotations

import weakref
from typing import Any

from scrapy.crawler import Crawler

from tweetform import state
from tweetform.credentials import load_credentials
from tweetform.quota.gate import QuotaGate
from tweetform.quota.pool import CredentialPool

_pools: "weakref.WeakKeyDictionary[Crawler, CredentialPool]" = weakref.WeakKeyDictionary()
_books: "weakref.WeakKeyDictionary[Crawler, Any]" = weakref.WeakKeyDictionary()
_gates: "weakref.WeakKeyDictionary[Crawler, QuotaGate]" = weakref.WeakKeyDictionary()


def pool(crawler: Crawler) -> CredentialPool:
    found = _pools.get(crawler)
    if found is None:
        s = crawler.settings
        found = _pools[crawler] = CredentialPool(load_credentials(s), app_lanes_for_users=s.getbool("TWEETFORM_APP_LANES_FOR_USERS"))
    return found


def book(crawler: Crawler) -> Any:
    """The quota book: in memory, or shared through Redis (the state layer chooses)."""
    found = _books.get(crawler)
    if found is None:
        found = _books[crawler] = state.quota_book(crawler, pool(crawler))
    return found


def gate(crawler: Crawler) -> QuotaGate:
    found = _gates.get(crawler)
    if found is None:
        found = _gates[crawler] = QuotaGate(crawler, book(crawler))
    return found


def existing_gate(crawler: Crawler) -> QuotaGate | None:
    """The crawler's gate if one was made (the progress line shows its waits)."""
    return _gates.get(crawler)
