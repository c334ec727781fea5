"""One credential pool and one quota book per crawler, shared by the components that need them."""

from __future__ import annotations

from scrapy.crawler import Crawler

from tweetform.credentials import load_credentials
from tweetform.quota.book import QuotaBook
from tweetform.quota.pool import CredentialPool


def pool(crawler: Crawler) -> CredentialPool:
    found = getattr(crawler, "_tweetform_pool", None)
    if found is None:
        s = crawler.settings
        found = CredentialPool(load_credentials(s), app_lanes_for_users=s.getbool("TWEETFORM_APP_LANES_FOR_USERS"))
        crawler._tweetform_pool = found  # type: ignore[attr-defined]
    return found


def book(crawler: Crawler) -> QuotaBook:
    """The quota book: in memory, or shared through Redis in distributed mode."""
    found = getattr(crawler, "_tweetform_book", None)
    if found is None:
        s = crawler.settings
        margin = s.getfloat("TWEETFORM_QUOTA_RESET_MARGIN")
        if s.get("REDIS_URL"):
            from tweetform.distributed.quota import RedisQuotaBook
            from tweetform.distributed.scheduler import redis_client

            found = RedisQuotaBook(pool(crawler), redis_client(s), margin=margin, hold=s.getfloat("DOWNLOAD_TIMEOUT") + 30)
        else:
            found = QuotaBook(pool(crawler), margin=margin)
        crawler._tweetform_book = found  # type: ignore[attr-defined]
    return found


def gate(crawler: Crawler) -> "QuotaGate":
    from tweetform.quota.gate import QuotaGate

    found = getattr(crawler, "_tweetform_gate", None)
    if found is None:
        found = crawler._tweetform_gate = QuotaGate(crawler)  # type: ignore[attr-defined]
    return found
