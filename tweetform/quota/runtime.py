"""One credential pool, one quota book and one quota gate per crawler, shared by the components that need them."""

from __future__ import annotations

import weakref
from typing import Any

from scrapy.crawler import Crawler

from tweetform import state
from tweetform.api.bluesky import Sessions
from tweetform.credentials import load_credentials
from tweetform.quota.gate import QuotaGate
from tweetform.proxies.config import load_proxy_list
from tweetform.quota.pool import CredentialPool, ip_lanes

_pools: "weakref.WeakKeyDictionary[Crawler, CredentialPool]" = weakref.WeakKeyDictionary()
_books: "weakref.WeakKeyDictionary[Crawler, Any]" = weakref.WeakKeyDictionary()
_gates: "weakref.WeakKeyDictionary[Crawler, QuotaGate]" = weakref.WeakKeyDictionary()


def pool(crawler: Crawler) -> CredentialPool:
    found = _pools.get(crawler)
    if found is None:
        s = crawler.settings
        # X credentials, Bluesky accounts (for sessions) and Bluesky's per-IP lanes
        creds = load_credentials(s, "all") + ip_lanes(load_proxy_list(s))
        found = _pools[crawler] = CredentialPool(creds, app_lanes_for_users=s.getbool("TWEETFORM_APP_LANES_FOR_USERS"))
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


_sessions: "weakref.WeakKeyDictionary[Crawler, Any]" = weakref.WeakKeyDictionary()


def bluesky_sessions(crawler: Crawler, accounts: list[Any], post: Any) -> Sessions:
    """The crawler's Bluesky account sessions, made once."""
    found = _sessions.get(crawler)
    if found is None:
        found = _sessions[crawler] = Sessions(accounts, crawler.settings.get("TWEETFORM_BLUESKY_PDS"), post)
    return found


def existing_sessions(crawler: Crawler) -> Any:
    return _sessions.get(crawler)
