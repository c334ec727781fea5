"""API answers that are about the credential, not the data: auth failures and 429s.

Both are handled before the spider sees anything: a rejected credential leaves
rotation (one log line with its alias) and the request goes back to be sent
with another; a 429 puts the request back to wait for the window's reset, and
does not spend a retry. Everything else reaches the spider, which classifies it
with :mod:`tweetform.api.errors`.
"""

from __future__ import annotations

import json
import logging
import time

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.http import Response

from tweetform.api import errors
from tweetform.middlewares.pacing import META_NOT_BEFORE
from tweetform.middlewares.signing import META_CREDENTIAL, META_ENDPOINT
from tweetform.quota.pool import CredentialPool

logger = logging.getLogger(__name__)


def _parse(body: bytes):
    try:
        return json.loads(body)
    except ValueError:
        return None


class ApiErrorMiddleware:
    def __init__(self, crawler: Crawler, pool: CredentialPool) -> None:
        self.crawler = crawler
        self.pool = pool
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "ApiErrorMiddleware":
        from tweetform.middlewares.signing import SigningMiddleware

        SigningMiddleware.from_crawler(crawler)  # makes sure the shared pool exists
        return cls(crawler, crawler.tweetform_pool)  # type: ignore[attr-defined]

    def process_response(self, request: Request, response: Response) -> Response | Request:
        key = request.meta.get(META_ENDPOINT)
        if key is None or response.status in (200, 404):
            return response
        version = "2" if key.startswith("/2/") else "1.1"
        outcome = errors.classify(response.status, _parse(response.body), version)
        alias = request.meta.get(META_CREDENTIAL, "?")
        if outcome.kind == errors.RATE_LIMITED:
            self.stats.inc_value("tweetform/quota/rate_limited")
            reset = response.headers.get("x-rate-limit-reset")
            remaining = response.headers.get("x-rate-limit-remaining")
            wait_until = time.time() + 1.0  # a per-second limit, or no reset header
            if reset and remaining is not None and int(remaining) <= 0:
                wait_until = max(wait_until, float(reset))
            logger.info("429 on %s for credential %r: waiting until %s", key, alias, time.strftime("%H:%M:%S", time.gmtime(wait_until)))
            retry = request.replace(dont_filter=True)
            retry.meta[META_NOT_BEFORE] = wait_until
            return retry
        if outcome.kind in (errors.AUTH, errors.FORBIDDEN):
            self.stats.inc_value("tweetform/credentials/rejected")
            self.pool.retire(alias, f"{key} answered HTTP {response.status}" + (f" code {outcome.code}" if outcome.code else "") + (f" ({outcome.message})" if outcome.message else ""))
            return request.replace(dont_filter=True)
        return response
