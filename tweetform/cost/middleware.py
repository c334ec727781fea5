"""Spider middleware: what each page cost, from what it returned (the billing rule).

Sees every item a callback yields; a page (not an ``errors`` record) is charged
by :class:`tweetform.cost.ledger.CostLedger` to its credential's app — the app
is the consumer key (``app_key``; named in stats by the alias of its app-only
credential, else of its first) or, for a bearer-only credential, the credential itself. When the
callback's output has been consumed, the page's budget reservation
(:mod:`tweetform.cost.budget`) is settled to what it actually cost.

Stats: ``tweetform/cost/usd`` (total), ``tweetform/cost/usd/<app>``,
``tweetform/cost/resources/<kind>`` (resources billed, after the UTC-day dedupe).
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Iterable, Iterator

import orjson

from scrapy.crawler import Crawler
from scrapy.http import Response

from tweetform.config import uses_redis
from tweetform.cost import usd
from tweetform.cost.budget import budget_middleware
from tweetform.cost.ledger import CostLedger, DayOf, SharedCostLedger
from tweetform.cost.rule import resources
from tweetform.items import PROVENANCE, PageItem
from tweetform.meta import BILL_UNWRITTEN, META_CTX


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

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "CostMiddleware":
        return cls(crawler)

    def charge(self, response: Response, item: PageItem) -> int:
        """Bill one page; micro-dollars it cost."""
        return self.charge_item(item, self.day_of(response.headers.get(b"Date")))[0]

    def charge_item(self, item: PageItem, day: str) -> tuple[int, str]:
        """Bill one page the API returned on ``day`` (UTC): (micro-dollars it cost, its app). The filtered
        stream calls it for each post, which comes without a response of its own."""
        prov = item[PROVENANCE]
        alias = prov.get("credential") or "?"
        app = self.apps.get(alias, alias)
        groups = list(resources(prov["endpoint"], item))
        cost = self.ledger.charge(prov["job"], app, day, groups)
        if cost:
            self.stats.set_value("tweetform/cost/usd", usd(self.ledger.total))
            self.stats.set_value(f"tweetform/cost/usd/{app}", usd(self.ledger.by_app[app]))
            for kind in {kind for kind, _ in groups if kind in self.ledger.resources}:
                self.stats.set_value(f"tweetform/cost/resources/{kind}", self.ledger.resources[kind])
        return cost, app

    def _is_page(self, out: Any) -> bool:
        return isinstance(out, PageItem) and PROVENANCE in out and out[PROVENANCE].get("bucket") != "errors"

    def _settle(self, response: Response, cost: int) -> None:
        budget = budget_middleware(self.crawler)
        if budget is None:
            return
        apps = None
        if cost:
            alias = response.meta.get("tweetform_credential") or "?"
            apps = {self.apps.get(alias, alias): cost}
        if "tweetform_budget" in response.meta:
            budget.settle(response.meta, cost, apps)
        elif cost:
            budget.charge_unreserved(response.meta["tweetform_ctx"]["job"], cost, apps)

    def charge_unwritten(self, response: Response) -> int:
        """An answer the API bills though the spider writes no page of it (a screen-name look-up)."""
        ctx = response.meta.get(META_CTX) or {}
        if not ctx.get(BILL_UNWRITTEN) or response.status != 200:
            return 0
        try:
            body = orjson.loads(response.body)
        except orjson.JSONDecodeError:
            return 0  # a body cut short is not billed
        if not isinstance(body, (dict, list)):
            return 0
        prov = {"credential": response.meta.get("tweetform_credential"), "endpoint": response.meta.get("tweetform_endpoint"),
                "job": ctx.get("job")}
        item = PageItem(body) if isinstance(body, dict) else PageItem(page=body)
        item[PROVENANCE] = prov
        return self.charge(response, item)

    def process_spider_output(self, response: Response, result: Iterable[Any]) -> Iterator[Any]:
        cost = 0
        try:
            for out in result:
                if self._is_page(out):
                    cost += self.charge(response, out)
                yield out
        finally:
            if "tweetform_ctx" in response.meta:
                self._settle(response, cost + self.charge_unwritten(response))

    async def process_spider_output_async(self, response: Response, result: AsyncIterator[Any]) -> AsyncIterator[Any]:
        cost = 0
        try:
            async for out in result:
                if self._is_page(out):
                    cost += self.charge(response, out)
                yield out
        finally:
            if "tweetform_ctx" in response.meta:
                self._settle(response, cost + self.charge_unwritten(response))


def cost_middleware(crawler: Crawler) -> CostMiddleware | None:
    """The crawler's CostMiddleware; None when it is not enabled or there is no engine yet."""
    try:
        return crawler.get_spider_middleware(CostMiddleware)
    except RuntimeError:
        return None
