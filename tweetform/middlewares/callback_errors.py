"""A callback that raises is a page that failed: recorded, counted, and the crawl goes on.

Scrapy's default for an exception in a callback is a traceback in the log and
nothing else: the page is neither in its bucket nor in ``errors``, the pages it
would have led to are never requested, and in distributed mode the request
stays "in flight" until a heartbeat reaper hands it out again — to raise again,
forever. This spider middleware turns the exception into what any other page
that could not be collected becomes: an ``errors`` record with reason
``failed`` (and the exception's class), ``tweetform/pages/failed`` plus a
per-class stat, the spider's ``on_account_error`` hook (so level-by-level
network crawls still complete the level), and the request acknowledged.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Iterable

import redis

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider, DropItem, IgnoreRequest
from scrapy.http import Response

from tweetform.api import errors
from tweetform.middlewares.pacing import META_NOT_BEFORE
from tweetform.meta import META_CTX
from tweetform.state.redis.connection import redis_away, refusal

logger = logging.getLogger(__name__)

#: Exceptions that Scrapy itself gives a meaning to: not page failures.
PASS_THROUGH = (CloseSpider, DropItem)
STAT_PREFIX = "tweetform/pages/failed/callback/"
ITEMS_NOT_WRITTEN = "tweetform/items/not_written"  # a pipeline raised for the item (not DropItem)


class CallbackErrorMiddleware:
    """Spider middleware (SPIDER_MIDDLEWARES), outermost (in collect mode, inside CollectMiddleware only): it sees what every other one let through."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "CallbackErrorMiddleware":
        mw = cls(crawler)
        crawler.signals.connect(mw.item_error, signal=signals.item_error)
        return mw

    def item_error(self, item: Any, response: Any, spider: Any, failure: Any) -> None:
        """An item pipeline raised (e.g. the output directory cannot be written): counted, so the exit status says so."""
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(ITEMS_NOT_WRITTEN)

    def process_spider_exception(self, response: Response, exception: BaseException) -> Iterable[Any] | None:
        return self.handle(response, exception, self.crawler.spider)

    def handle(self, response: Response, exception: BaseException, spider: Any) -> Iterable[Any] | None:
        """What a page whose handling raised becomes (None: Scrapy's own handling). Errbacks call it too:
        their output does not pass through spider middlewares (see ``ApiSpider.on_failure``)."""
        if isinstance(exception, PASS_THROUGH) or META_CTX not in response.meta or not hasattr(spider, "error_item"):
            return None  # not a tweetform API page: Scrapy's own handling
        if isinstance(exception, IgnoreRequest):
            # the job is gone (cancelled, purged): nothing to record, but the request is finished
            self._ack(spider, response)
            return ()
        if isinstance(exception, redis.RedisError) and redis_away(exception):
            # shared state (Redis) away while the page was handled, e.g. by a middleware after the
            # callback: not a failed page; fetched again once Redis is back (its lease is replaced).
            # A Redis error *answer* (OOM, WRONGTYPE, a script error) is not "away": the page fails.
            logger.warning("Redis unreachable (%s) while handling %s: it will be fetched again", type(exception).__name__, response.url)
            again = response.request.replace(dont_filter=True)
            again.meta[META_NOT_BEFORE] = time.time() + 2.0
            return [again]
        return self._record(response, exception, spider)

    def _record(self, response: Response, exception: BaseException, spider: Any) -> Iterable[Any]:
        name = type(exception).__name__
        stats = self.crawler.stats
        assert stats is not None
        stats.inc_value("tweetform/pages/failed")
        stats.inc_value(STAT_PREFIX + name)
        spider.pages_failed = getattr(spider, "pages_failed", 0) + 1
        refused = refusal(exception) if isinstance(exception, redis.RedisError) else None
        if refused:  # Redis answered with an error: one line, no traceback
            logger.error("page failed for good (%s): %s", refused, response.url)
        else:
            logger.error("page failed for good (%s while handling it): %s", name, response.url, exc_info=exception)
        out: list[Any] = []
        try:
            target = spider.target_of(response)
            message = (refused or f"{name} while handling the page: {exception}")[:500]
            item = spider.error_item(response, "failed", target, errors.Outcome("failed", response.status, None, message), None)
            item["exception"] = name
            out.append(item)
            # e.g. a network crawl's level bookkeeping: the page is done, even if it failed
            out.extend(spider.on_account_error(response, None))
        except Exception as second:  # noqa: BLE001 - recording must never raise in its turn
            logger.error("could not record the failed page %s (%s)", response.url, type(second).__name__)
        self._ack(spider, response)
        return out

    @staticmethod
    def _ack(spider: Any, response: Response) -> None:
        """Distributed mode: the request is no longer in flight (else it would be handed out again)."""
        finished = getattr(spider, "finished", None)
        if finished is not None and response.request is not None:
            try:
                finished(response.request)
            except Exception as exc:  # noqa: BLE001 - e.g. Redis away: the reaper puts it back later
                logger.warning("could not acknowledge %s (%s)", response.url, type(exc).__name__)
