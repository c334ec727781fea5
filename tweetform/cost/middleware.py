"""Spider middleware: what each page cost, from what it returned (the billing rule).

Sees every item a callback yields; a page (not an ``errors`` record) is charged
by :class:`tweetform.cost.ledger.CostLedger` to its credential's app — the app
is the consumer key (``app_key``; named in stats by the alias of its app-only
credential, else of its first) or, for a bearer-only credential, the credential itself. When the
callback's output has been consumed and each of its pages' cost is known, the
answer's budget reservation (:mod:`tweetform.cost.budget`) is settled to what
it actually cost. In distributed mode a page's cost is known when Redis answers
which of its resource ids were not billed yet that day: that call rides the
worker's next round trip (the acknowledgement of the request, with the requests
it produced; ``tweetform.state.redis.outbox``), so the page is charged then; a
reservation is held until then, which only holds money a little longer.

Stats: ``tweetform/cost/usd`` (total), ``tweetform/cost/usd/<app>``,
``tweetform/cost/resources/<kind>`` (resources billed, after the UTC-day dedupe).
"""

from __future__ import annotations

import logging
from typing import Any, AsyncIterator, Callable, Iterable, Iterator

import orjson

from scrapy.crawler import Crawler
from scrapy.http import Response

from tweetform.config import uses_redis
from tweetform.cost import dollars, usd
from tweetform.cost.budget import budget_middleware
from tweetform.cost.ledger import CostLedger, DayOf, SharedCostLedger
from tweetform.cost.rule import resources
from tweetform.items import PROVENANCE, PageItem
from tweetform.meta import BILL_UNWRITTEN, META_CTX

logger = logging.getLogger(__name__)


def app_names(credentials: Iterable[Any]) -> dict[str, str]:
    """credential alias -> the name of its app: the alias of the app's app-only credential, else of
    its first credential (as the sandbox names apps); a bearer-only credential is an app of its own."""
    creds = list(credentials)
    names: dict[str, str] = {}
    for cred in sorted(creds, key=lambda c: c.kind != "app"):  # app-only credentials name their app
        if cred.app_key:
            names.setdefault(cred.app_key, cred.alias)
    return {c.alias: names[c.app_key] if c.app_key else c.alias for c in creds}


def kept_ledger(crawler: Crawler, prices: Any) -> CostLedger:
    """One process: the ids billed kept in the job's JOBDIR (a continued job counts none twice), else in memory."""
    if crawler.settings.get("JOBDIR"):
        from tweetform.cost.billed import KeptCostLedger
        from tweetform.state.local.database import database

        return KeptCostLedger(database(crawler), prices)
    return CostLedger(prices)


class _Bill:
    """An answer's pages being charged: its reservation is settled once its output is done and each page charged."""

    __slots__ = ("meta", "cost", "unbilled", "waiting", "output_done", "settled")

    def __init__(self, meta: dict) -> None:
        self.meta = meta
        self.cost = 0  # micro-dollars charged
        self.unbilled = 0  # at most what pages Redis never answered for cost (settled as spent: conservative)
        self.waiting = 0  # pages whose cost is not known yet
        self.output_done = False
        self.settled = False


class CostMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        from tweetform.credentials import load_credentials

        self.crawler = crawler
        self.stats = crawler.stats
        prices = crawler.settings.getdict("TWEETFORM_PRICES_USD") or None
        if uses_redis(crawler.settings):
            from tweetform.state.redis import connection, outbox

            self.ledger: CostLedger = SharedCostLedger(connection.for_crawler(crawler), prices, outbox=outbox.for_crawler(crawler))
        else:
            self.ledger = kept_ledger(crawler, prices)
        self.day_of = DayOf()
        try:
            self.apps = app_names(load_credentials(crawler.settings))
        except ValueError:
            self.apps = {}  # bad credentials stop the crawl elsewhere, with their own line
        self.finished = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "CostMiddleware":
        from scrapy import signals

        mw = cls(crawler)
        crawler.signals.connect(mw.finish, signal=signals.spider_closed)
        return mw

    def charge(self, response: Response, item: PageItem) -> int:
        """Bill one page; micro-dollars it cost."""
        return self.charge_item(item, self.day_of(response.headers.get(b"Date")))[0]

    def _page(self, item: PageItem) -> tuple[str, str, list[tuple[str, list[str]]]]:
        """(job, app, resource groups) of a page."""
        prov = item[PROVENANCE]
        alias = prov.get("credential") or "?"
        return prov["job"], self.apps.get(alias, alias), list(resources(prov["endpoint"], item))

    def charge_item(self, item: PageItem, day: str) -> tuple[int, str]:
        """Bill one page the API returned on ``day`` (UTC): (micro-dollars it cost, its app). The filtered
        stream calls it for each post, which comes without a response of its own."""
        job, app, groups = self._page(item)
        cost = self.ledger.charge(job, app, day, groups)
        self._count(app, groups, cost)
        return cost, app

    def charge_item_later(self, item: PageItem, day: str, charged: Callable[[int, int, str], None]) -> None:
        """:meth:`charge_item` that never raises for Redis: ``charged(cost, beyond, app)`` is told once the ledger
        knows (at once in one process). In distributed mode the page's billed-ids calls are sent now (the filtered
        stream's posts have no round trip to ride) and, Redis away or an answer lost, again with later round trips,
        as a crawl's pages are (:meth:`SharedCostLedger.charge_later`: ``beyond`` is the most a lost answer's ids may
        have cost beyond ``cost``; what never gets an answer is told at :meth:`finish`, at the most it may cost)."""
        if not isinstance(self.ledger, SharedCostLedger):
            cost, app = self.charge_item(item, day)
            charged(cost, 0, app)
            return
        job, app, groups = self._page(item)

        def told(cost: int, beyond: int) -> None:
            self._count(app, groups, cost)
            charged(cost, beyond, app)

        self.ledger.charge_later(job, app, day, groups, told)
        outbox = self.ledger.outbox
        if outbox is not None and outbox.started:
            outbox.flush()  # never raises: a call Redis did not answer waits in the outbox again

    def _count(self, app: str, groups: list[tuple[str, list[str]]], cost: int) -> None:
        if cost:
            self.stats.set_value("tweetform/cost/usd", usd(self.ledger.total))
            self.stats.set_value(f"tweetform/cost/usd/{app}", usd(self.ledger.by_app[app]))
            for kind in {kind for kind, _ in groups if kind in self.ledger.resources}:
                self.stats.set_value(f"tweetform/cost/resources/{kind}", self.ledger.resources[kind])

    def _charge_into(self, bill: _Bill, response: Response, item: PageItem) -> None:
        """Charge a page of ``bill``'s answer: at once in one process, when Redis answers in distributed mode."""
        day = self.day_of(response.headers.get(b"Date"))
        if not isinstance(self.ledger, SharedCostLedger):
            bill.cost += self.charge_item(item, day)[0]
            return
        job, app, groups = self._page(item)

        def charged(cost: int, unbilled: int) -> None:
            self._count(app, groups, cost)
            bill.cost += cost
            bill.unbilled += unbilled
            bill.waiting -= 1
            self._settle_when_done(bill)

        bill.waiting += 1
        self.ledger.charge_later(job, app, day, groups, charged)

    def _settle_when_done(self, bill: _Bill) -> None:
        if bill.output_done and not bill.waiting and not bill.settled and "tweetform_ctx" in bill.meta:
            bill.settled = True
            self._settle(bill.meta, bill.cost, bill.unbilled)

    def finish(self) -> None:
        """The crawl closes (the scheduler has sent what waited in the outbox): the pages Redis never answered
        for are settled at the most they may have cost, said in one line (BudgetMiddleware.spider_closed calls
        this before it releases what is still reserved)."""
        if self.finished or not isinstance(self.ledger, SharedCostLedger):
            return
        self.finished = True
        pages, most = self.ledger.finish()
        if pages:
            logger.error("%d page(s) could not be billed: Redis did not answer which of their resource ids were already "
                         "billed today; the stats leave them out, a job with a budget counts them spent at the most "
                         "they may have cost (%s)", pages, dollars(most))

    def _is_page(self, out: Any) -> bool:
        return isinstance(out, PageItem) and PROVENANCE in out and out[PROVENANCE].get("bucket") != "errors"

    def _settle(self, meta: dict, cost: int, unbilled: int = 0) -> None:
        """The answer's reservation becomes what it cost; ``unbilled``: at most what its pages Redis never answered
        for cost, counted as spent when a budget holds the job (never overrun because an answer was lost)."""
        budget = budget_middleware(self.crawler)
        if budget is None:
            return
        alias = meta.get("tweetform_credential") or "?"
        app = self.apps.get(alias, alias)
        if "tweetform_budget" in meta:
            spent = cost + unbilled
            budget.settle(meta, spent, {app: spent} if spent else None)
        elif cost:
            budget.charge_unreserved(meta["tweetform_ctx"]["job"], cost, {app: cost})

    def unwritten_page(self, response: Response) -> PageItem | None:
        """An answer the API bills though the spider writes no page of it (a screen-name look-up), as a page."""
        ctx = response.meta.get(META_CTX) or {}
        if not ctx.get(BILL_UNWRITTEN) or response.status != 200:
            return None
        try:
            body = orjson.loads(response.body)
        except orjson.JSONDecodeError:
            return None  # a body cut short is not billed
        if not isinstance(body, (dict, list)):
            return None
        prov = {"credential": response.meta.get("tweetform_credential"), "endpoint": response.meta.get("tweetform_endpoint"),
                "job": ctx.get("job")}
        item = PageItem(body) if isinstance(body, dict) else PageItem(page=body)
        item[PROVENANCE] = prov
        return item

    def _output_done(self, bill: _Bill, response: Response) -> None:
        if "tweetform_ctx" in response.meta:
            unwritten = self.unwritten_page(response)
            if unwritten is not None:
                self._charge_into(bill, response, unwritten)
        bill.output_done = True
        self._settle_when_done(bill)

    def process_spider_output(self, response: Response, result: Iterable[Any]) -> Iterator[Any]:
        bill = _Bill(response.meta)
        try:
            for out in result:
                if self._is_page(out):
                    self._charge_into(bill, response, out)
                yield out
        finally:
            self._output_done(bill, response)

    async def process_spider_output_async(self, response: Response, result: AsyncIterator[Any]) -> AsyncIterator[Any]:
        bill = _Bill(response.meta)
        try:
            async for out in result:
                if self._is_page(out):
                    self._charge_into(bill, response, out)
                yield out
        finally:
            self._output_done(bill, response)


def cost_middleware(crawler: Crawler) -> CostMiddleware | None:
    """The crawler's CostMiddleware; None when it is not enabled or there is no engine yet."""
    try:
        return crawler.get_spider_middleware(CostMiddleware)
    except RuntimeError:
        return None
