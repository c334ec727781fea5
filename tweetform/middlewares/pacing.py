"""Scheduled waits before a request goes out: rate-limit resets and retry back-off.

A request may carry ``tweetform_not_before`` (epoch seconds): it waits, without
blocking the reactor, until then. A retried request (``retry_times`` set by
Scrapy's RetryMiddleware or ``get_retry_request``) waits
``TWEETFORM_RETRY_BACKOFF * 2**(n-1)`` seconds, capped by
``TWEETFORM_RETRY_BACKOFF_MAX``.
"""

from __future__ import annotations

import asyncio
import time

from scrapy import Request
from scrapy.crawler import Crawler

META_NOT_BEFORE = "tweetform_not_before"
META_BACKED_OFF = "tweetform_backed_off_for"


def backoff_delay(retry_times: int, base: float, cap: float) -> float:
    return min(cap, base * 2 ** max(0, retry_times - 1)) if retry_times > 0 else 0.0


class PacingMiddleware:
    def __init__(self, crawler: Crawler, base: float, cap: float) -> None:
        self.crawler = crawler
        self.base = base
        self.cap = cap

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "PacingMiddleware":
        s = crawler.settings
        return cls(crawler, s.getfloat("TWEETFORM_RETRY_BACKOFF"), s.getfloat("TWEETFORM_RETRY_BACKOFF_MAX"))

    async def process_request(self, request: Request) -> None:
        delay = 0.0
        not_before = request.meta.get(META_NOT_BEFORE)
        if not_before:
            delay = max(delay, float(not_before) - time.time())
        retries = int(request.meta.get("retry_times", 0))
        if retries > int(request.meta.get(META_BACKED_OFF, 0)):
            request.meta[META_BACKED_OFF] = retries
            delay = max(delay, backoff_delay(retries, self.base, self.cap))
        if delay > 0:
            self.crawler.stats.inc_value("tweetform/wait_seconds", delay)
            await asyncio.sleep(delay)
        return None
