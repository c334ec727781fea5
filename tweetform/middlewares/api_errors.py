"""API answers about the credential, not the data: quota headers, 429s, auth failures.

Every answer releases its quota reservation and teaches the quota book the
window's ``limit/remaining/reset``. A 429 goes back to the scheduler, where the
quota queue holds it until the window resets (no retry spent, no hammering).
A usage-capped 429 (out of pay-per-use credits) stops the job as its budget
would (:mod:`tweetform.cost.budget`). A rejected credential leaves rotation with one log line naming its alias and
the request goes back to be sent with another. Everything else reaches the
spider, which classifies it with :mod:`tweetform.api.errors`.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis
from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.http import Response

from tweetform.api import errors
from tweetform.api.endpoints import ENDPOINTS
from tweetform.cost.budget import budget_middleware
from tweetform.meta import META_CREDENTIAL, META_ENDPOINT
from tweetform.middlewares.signing import META_SESSION
from tweetform import state
from tweetform.quota.book import Reservation
from tweetform.quota.gate import META_LANE, reservation_of

logger = logging.getLogger(__name__)


def _parse(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


class ApiErrorMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.pool = state.pool(crawler)
        self.book = state.book(crawler)
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "ApiErrorMiddleware":
        return cls(crawler)

    def _reservation(self, request: Request) -> Reservation | None:
        """The request's reservation, taken off it so that it is released once."""
        reservation = reservation_of(request)
        request.meta.pop(META_LANE, None)
        return reservation

    def process_exception(self, request: Request, exception: Exception) -> None:
        reservation = self._reservation(request)
        if reservation is not None:
            self._release(self.book.failed, reservation)
        return None

    @staticmethod
    def _release(step: Any, *args: Any) -> None:
        try:
            step(*args)
        except redis.RedisError:  # shared quota while Redis is away: the reservation expires by itself
            logger.warning("could not update shared quota (Redis away)")

    def process_response(self, request: Request, response: Response) -> Response | Request:
        key = request.meta.get(META_ENDPOINT)
        if key is None:
            return response
        reservation = self._reservation(request)
        if reservation is not None:
            self._release(self.book.answered, reservation, response.status, response.headers.to_unicode_dict())
        if response.status in (200, 404):
            return response
        version = ENDPOINTS[key].version
        outcome = errors.classify(response.status, _parse(response.body), version)
        alias = request.meta.get(META_CREDENTIAL, "?")
        if outcome.kind == errors.USAGE_CAPPED:  # out of credits or over the cap: stop like at the budget (tweetform.cost)
            self.stats.inc_value("tweetform/cost/usage_capped")
            budget = budget_middleware(self.crawler)
            if budget is not None:
                return budget.usage_capped(request, alias, outcome.message)
            return request.replace(dont_filter=True)
        if outcome.kind == errors.EXPIRED_TOKEN:  # Bluesky: log in again (or refresh) and send it again
            self.stats.inc_value("tweetform/bluesky/expired_tokens")
            sessions = state.existing_sessions(self.crawler)
            if sessions is not None and request.meta.get(META_SESSION):
                # only the token this attempt was signed with (its own header, never copied out): a late
                # answer for an old token must not throw away the session another answer just renewed
                signed = request.headers.get("Authorization", b"").decode("latin-1")
                sessions.expired(request.meta[META_SESSION], signed.removeprefix("Bearer ") or None)
            tries = int(request.meta.get("tweetform_expired_tries", 0)) + 1
            if tries <= 3:
                again = request.replace(dont_filter=True)
                again.meta["tweetform_expired_tries"] = tries
                return again
            return response
        if outcome.kind == errors.RATE_LIMITED:
            self.stats.inc_value("tweetform/quota/rate_limited")
            self.stats.inc_value(f"tweetform/quota/rate_limited/{alias}")
            logger.info("429 on %s for credential %r: the request waits for quota", key, alias)
            return request.replace(dont_filter=True)
        if outcome.kind in (errors.AUTH, errors.FORBIDDEN):
            self.stats.inc_value("tweetform/credentials/rejected")
            detail = f"{key} answered HTTP {response.status}" + (f" code {outcome.code}" if outcome.code else "")
            self.pool.retire(alias, detail + (f" ({outcome.message})" if outcome.message else ""))
            return request.replace(dont_filter=True)
        return response
