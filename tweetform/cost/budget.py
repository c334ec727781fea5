"""Never spend more than the budget: reserve a page's maximum cost before it is sent.

:class:`BudgetMiddleware` (a downloader middleware, after signing) reserves
:func:`tweetform.cost.rule.max_cost` of every API request against its job's
budget; :class:`tweetform.cost.middleware.CostMiddleware` settles the
reservation to what the page actually cost once the spider has it, and an
answer that failed releases it. Requests of earlier BFS levels (higher
priority) reserve first. Near the end of the budget a page is asked for with a
smaller ``max_results`` / ``count`` and a look-up batch is split (the ids that
fit now, the others queued); when not even the smallest page fits, the job is
out of budget: the request goes back to the queue,
nothing more is sent for the job, and once what is in flight has been settled
the crawl stops with ``budget_exhausted`` (exit status 7) and one log line. The
queue is kept (with ``JOBDIR``, or in Redis), so a larger budget continues the
job without paying again for what was done.

A job's budget is ``-a budget=USD`` (``scrapy push --budget``), else
``TWEETFORM_BUDGET_USD`` (default :data:`tweetform.cost.DEFAULT_BUDGET_USD`); only
``unlimited`` runs a job without one. What a job has spent is
kept in its job state (counter ``spent_micro_usd``: resumed with ``JOBDIR``);
in distributed mode budget and spent live in a Redis hash per job, the open
reservations beside it, and a Lua script reserves atomically for every worker
(:class:`tweetform.cost.redis_budget.RedisBudget`). A usage-capped 429 stops a
job the same way (:meth:`BudgetMiddleware.usage_capped`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.utils.asyncio import create_looping_call
from scrapy.utils.defer import deferred_from_coro

from tweetform.config import uses_redis
from tweetform import state
from tweetform.api.endpoints import ENDPOINTS, page_size_param
from tweetform.api.pricing import DATA_KIND
from tweetform.cost import default_budget_usd, dollars, micro
from tweetform.cost.rule import LOOKUP_PARAMS, max_cost, page_size, unit_cost
from tweetform.meta import META_DELIVERY, META_ENDPOINT, META_LEASE, META_PART_OF, META_QID
from tweetform.quota.gate import META_LANE, reservation_of
from tweetform.state.base import BUDGET, RUNNING

logger = logging.getLogger(__name__)
META_RESERVED = "tweetform_budget"  # (token, job, micro-dollars reserved) of this attempt
META_SHRUNK = "tweetform_page_size"  # a smaller page than the job's parameters ask for (near the end of the budget)
SPENT = "spent_micro_usd"  # job state counter
EXHAUSTED = "budget_exhausted"  # finish reason and job state
SETTLE_POLL = 0.05  # seconds between looks at a job's reservations while they settle
SETTLE_WAIT = 5.0  # then the request goes back to the queue


class LocalBudget:
    """One process: reservations in memory, what was spent in the job store (``JOBDIR`` keeps it)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.spent: dict[str, int] = {}
        self.reserved: dict[str, int] = {}
        self.resumed: set[str] = set()

    def _spent(self, job: str) -> int:
        if job not in self.spent:
            try:
                self.spent[job] = int(self.store.status(job).counters.get(SPENT, 0))
            except (NotImplementedError, AttributeError):
                self.spent[job] = 0
        return self.spent[job]

    def reserve(self, job: str, budget: int, amount: int, token: Any = None) -> bool:
        if self._spent(job) + self.reserved.get(job, 0) + amount > budget:
            return False
        self.reserved[job] = self.reserved.get(job, 0) + amount
        if job not in self.resumed:  # a job stopped at its budget, run again with a larger one: running again
            self.resumed.add(job)
            try:
                if self.store.state(job) == BUDGET:
                    self.store.set_state(job, RUNNING)
            except NotImplementedError:
                pass
        return True

    def left(self, job: str, budget: int) -> int:
        """What may still be reserved."""
        return budget - self._spent(job) - self.reserved.get(job, 0)

    def unspent(self, job: str, budget: int) -> int:
        """What is left once every reservation is settled (at most)."""
        return budget - self._spent(job)

    def settle(self, job: str, reserved: int, actual: int, apps: dict[str, int] | None = None, token: Any = None) -> None:
        self.reserved[job] = self.reserved.get(job, 0) - reserved
        if actual:
            self.spent[job] = self._spent(job) + actual
            counters = {SPENT: actual, **{f"{SPENT}/{app}": n for app, n in (apps or {}).items() if n}}
            try:
                self.store.progress(job, **counters)
            except NotImplementedError:
                pass

    def record(self, job: str, actual: int, apps: dict[str, int] | None = None) -> None:
        """What a page of a job without a budget cost."""
        self.settle(job, 0, actual, apps)

    def total_spent(self, job: str) -> int:
        return self._spent(job)

    def exhausted(self, job: str) -> None:
        """Out of budget: the job's state says so."""
        try:
            self.store.set_state(job, BUDGET)
        except NotImplementedError:
            pass


class BudgetMiddleware:
    """Downloader middleware: reserve before sending, release when the answer failed."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        default = default_budget_usd(crawler.settings)  # checked by the command before the crawl starts
        self.default = 0 if default == float("inf") else micro(default)
        self.prices = crawler.settings.getdict("TWEETFORM_PRICES_USD") or None
        self.api_base = str(crawler.settings.get("TWEETFORM_API_BASE")).rstrip("/")
        self.book: Any = None
        self._budgets: dict[str, int] = {}
        self.outstanding: dict[tuple[str, int], tuple[str, int]] = {}  # token -> (job, reserved), this process's
        self.instance = uuid.uuid4().hex[:12]
        self.tokens = itertools.count(1)
        self.out_of_budget: dict[str, int] = {}  # job -> requests refused
        self.waiting: dict[str, list[int]] = {}  # job -> priorities of the requests waiting here for budget
        self.announced: set[str] = set()  # jobs whose stop was logged (distributed: until they get more budget)
        self.capped: dict[str, str] = {}  # job -> why the API refused its app (usage-capped)
        self.stopping = False
        self.shared = uses_redis(crawler.settings)  # the budget is the job's, across workers
        self._watch: Any = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "BudgetMiddleware":
        from scrapy import signals

        mw = cls(crawler)
        crawler.signals.connect(mw.spider_closed, signal=signals.spider_closed)
        return mw

    # --- the book ------------------------------------------------------------------------
    def _book(self) -> Any:
        if self.book is None:
            store = state.job_store(self.crawler)
            if uses_redis(self.crawler.settings):
                from tweetform.cost.redis_budget import RedisBudget

                self.book = RedisBudget.from_crawler(self.crawler)
            else:
                self.book = LocalBudget(store)
        return self.book

    def budget_of(self, job_id: str) -> int:
        """The job's budget in micro-dollars (0: unlimited), as its arguments say (cached: they do not change
        while a process runs it; ``scrapy admin budget`` raises the shared budget in Redis instead)."""
        found = self._budgets.get(job_id)
        if found is None:
            store = state.job_store(self.crawler)
            job = store.load(job_id) if store is not None else None
            given = getattr(job, "budget", None) if job is not None else None
            free = getattr(job, "api", "") == "bluesky"  # $0 a request: the default budget has nothing to bound
            found = (0 if given == float("inf") else micro(given)) if given else 0 if free else self.default  # 0: unlimited
            if job is not None:
                self._budgets[job_id] = found
        return found

    # --- sending -------------------------------------------------------------------------
    async def process_request(self, request: Request) -> Request | None:
        key = request.meta.get(META_ENDPOINT)
        ctx = request.meta.get("tweetform_ctx")
        if key not in DATA_KIND or not isinstance(ctx, dict):
            return None
        self._release_stale(request)
        job = str(ctx["job"])
        budget = self.budget_of(job)
        if not budget:
            return None
        params = ctx.get("params") or {}
        if META_SHRUNK in request.meta:  # asked for a smaller page near the end of the budget
            params = {**params, page_size_param(params) or "count": request.meta[META_SHRUNK]}
        book = self._book()
        amount = micro(max_cost(key, params, self.prices))
        smallest = self._smallest(key, params, amount)
        waited = 0.0
        waiting = self.waiting.setdefault(job, [])
        waiting.append(request.priority)
        try:
            while self.shared or job not in self.out_of_budget:
                # earlier BFS levels (higher priority) first: a later level never takes what an earlier one waits for
                first = max(waiting) <= request.priority
                token = (self.instance, next(self.tokens))  # unique across workers: a request may move between them
                if first and book.reserve(job, budget, amount, token):
                    self.outstanding[token] = (job, amount)
                    request.meta[META_RESERVED] = (token, job, amount)
                    self.announced.discard(job)
                    return None
                if book.unspent(job, budget) < smallest:
                    break  # not even the smallest page fits, whatever is settled: out of budget
                smaller = self._shrunk(request, key, params, ctx, book.left(job, budget)) if first else None
                if smaller is not None:
                    self._give_back_quota(request)
                    self.crawler.stats.inc_value("tweetform/cost/pages_shrunk")
                    return smaller
                if waited >= SETTLE_WAIT:  # what is reserved elsewhere takes long: the request waits in the queue
                    self._give_back_quota(request)
                    again = request.replace(dont_filter=True)
                    again.meta.pop(META_RESERVED, None)
                    return again
                # other pages' reservations are settling (usually for much less): wait for them
                await asyncio.sleep(SETTLE_POLL)
                waited += SETTLE_POLL
        finally:
            waiting.remove(request.priority)
        self._give_back_quota(request)
        return self._refuse(request, job, budget)

    def _smallest(self, key: str, params: dict, amount: int) -> int:
        """Micro-dollars of the smallest page this request may be shrunk to: a look-up of one id, a page of the
        endpoint's minimum size (the whole request if it cannot be made smaller)."""
        unit = micro(unit_cost(key, params, self.prices))
        if page_size_param(params) is None:
            return min(amount, unit) if any(params.get(n) not in (None, "") for n in LOOKUP_PARAMS) else amount
        return min(amount, unit * ENDPOINTS[key].min_page)

    def _shrunk(self, request: Request, key: str, params: dict, ctx: dict, left: int) -> Request | None:
        """The request for a smaller page that fits in what is left, if the endpoint allows it. Only its URL
        changes: the pages after it are asked for at the full size again (a larger budget goes on as before)."""
        name = page_size_param(params)
        unit = micro(unit_cost(key, params, self.prices))
        if unit <= 0:
            return None
        fits = left // unit
        if name is None:
            return self._split(request, key, params, ctx, int(fits))
        if fits < ENDPOINTS[key].min_page or fits >= page_size(key, params):
            return None
        smaller = {**params, name: int(fits)}
        url = ENDPOINTS[key].url(self.api_base, smaller, ctx.get("path_id"))
        meta = {**request.meta, META_SHRUNK: int(fits)}
        meta.pop(META_RESERVED, None)
        return request.replace(url=url, meta=meta, dont_filter=True)

    def _split(self, request: Request, key: str, params: dict, ctx: dict, fits: int) -> Request | None:
        """A look-up (ids in one request): the first ids that fit go now, the others in a request of
        their own, queued again (so nothing is lost and the budget still pays for what it can)."""
        name = next((n for n in LOOKUP_PARAMS if params.get(n) not in (None, "")), None)
        if name is None:
            return None
        ids = str(params[name]).split(",")
        if not 1 <= fits < len(ids):
            return None
        now, later = self._lookup_request(request, key, params, ctx, name, ids[:fits]), \
            self._lookup_request(request, key, params, ctx, name, ids[fits:])
        # a new request: only ``now`` (rescheduled by Scrapy) takes the queued request's place. Both carrying its id
        # and lease, the first pushed replaced it in flight and the other's lease check, a round trip later, refused it.
        # ``later`` reaches the queue first (engine.crawl): queued while the lease holds, never as a first delivery
        qid, lease = later.meta.pop(META_QID, None), later.meta.pop(META_LEASE, None)
        later.meta.pop(META_DELIVERY, None)
        if qid:
            later.meta[META_PART_OF] = (qid, lease or "")
        assert self.crawler.engine is not None
        self.crawler.engine.crawl(later)
        return now

    def _lookup_request(self, request: Request, key: str, params: dict, ctx: dict, name: str, ids: list[str]) -> Request:
        part = {**params, name: ",".join(ids)}
        new_ctx = {**ctx, "params": part}
        if "target" in ctx:  # the spiders account for every id asked (v1.1 drops missing ones silently)
            new_ctx["target"] = part[name]
        meta = {**request.meta, "tweetform_ctx": new_ctx}
        meta.pop(META_RESERVED, None)
        meta.pop(META_LANE, None)
        return request.replace(url=ENDPOINTS[key].url(self.api_base, part, ctx.get("path_id")), meta=meta, dont_filter=True)

    def _give_back_quota(self, request: Request) -> None:
        reserved = reservation_of(request)
        if reserved is not None:
            state.book(self.crawler).cancel(reserved)
        request.meta.pop(META_LANE, None)

    def usage_capped(self, request: Request, alias: str, detail: str) -> Request:
        """The API refused the app (out of credits, over the monthly cap): the job stops as at its budget."""
        job = str(request.meta["tweetform_ctx"]["job"])
        self.settle(request, 0)
        if job not in self.out_of_budget and job not in self.announced:
            logger.warning("the API answered usage-capped for credential %r (%s): job %s stops as at its budget",
                           alias, detail or "usage cap exceeded", job)
            self.capped[job] = detail or "usage cap exceeded"
        return self._refuse(request, job, self.budget_of(job))

    def _refuse(self, request: Request, job: str, budget: int) -> Request:
        """Out of budget: the request goes back to the queue and the job stops sending."""
        first = job not in self.out_of_budget and job not in self.announced
        self.out_of_budget[job] = self.out_of_budget.get(job, 0) + 1
        self.announced.add(job)
        if first:
            self._book().exhausted(job)
            self.crawler.stats.set_value("tweetform/cost/budget_exhausted", job)
            if not self.shared:
                self._stop_when_settled()
            else:  # other jobs go on; every worker's queue parks this job's requests until more budget
                spent = self._book().total_spent(job)
                if job in self.capped:
                    logger.error("job %s stopped: the API's usage cap (%s); spent %s; its requests are kept (parked): "
                                 "add credits, then `scrapy admin resume %s` continues it", job, self.capped[job], dollars(spent), job)
                else:
                    logger.error("job %s stopped at its budget: spent %s of %s; its requests are kept (parked): "
                                 "`scrapy admin budget %s +USD` continues it", job, dollars(spent), dollars(budget), job)
        if self.shared:
            self.out_of_budget.pop(job, None)  # a larger budget (scrapy admin budget) lets it go on
        again = request.replace(dont_filter=True)
        again.meta.pop(META_RESERVED, None)
        return again

    def _stop_when_settled(self) -> None:
        """No new request leaves; once every reservation is settled, the crawl closes."""
        engine = self.crawler.engine
        if engine is None or self.stopping:
            return
        self.stopping = True
        engine.pause()
        self._watch = create_looping_call(self._close_if_settled)
        self._watch.start(0.1, now=False)

    def _close_if_settled(self) -> None:
        engine = self.crawler.engine
        if engine is None or self.outstanding or engine.downloader.active or (engine._slot and engine.scraper.slot and engine.scraper.slot.active):
            return
        self._watch.stop()
        queued = len(engine._slot.scheduler) if engine._slot is not None else 0  # type: ignore[arg-type]
        again = str(self.crawler.settings.get("TWEETFORM_CONTINUE") or "")
        where = self.crawler.settings.get("JOBDIR")
        for job, refused in self.out_of_budget.items():
            budget, spent = self.budget_of(job), self._book().total_spent(job)
            undone = f"{queued:,} request(s) left undone are kept in the queue" + (f" ({where})" if where else "")
            if job in self.capped:
                logger.error("job %s stopped: the API's usage cap (%s); spent %s; %s: add credits, then %s", job,
                             self.capped[job], dollars(spent), undone,
                             f"`{again}` continues it" if again else "run it again with the same JOBDIR to continue")
            else:
                more = f"{max(2 * budget, budget + 1_000_000) / 1_000_000:.2f}".rstrip("0").rstrip(".")
                logger.error("job %s stopped at its budget: spent %s of %s (%s left); %s: %s", job, dollars(spent),
                             dollars(budget), dollars(max(0, budget - spent)), undone,
                             f"`{again} -a budget={more}` continues it (any budget above {dollars(budget)}), "
                             "without paying again for what was done" if again else
                             "run it again with a larger budget and the same JOBDIR to continue")
        deferred_from_coro(engine.close_spider_async(reason=EXHAUSTED))

    # --- answers ---------------------------------------------------------------------------
    def process_response(self, request: Request, response: Any) -> Any:
        if response.status != 200:
            self.settle(request, 0)  # failed answers are never billed
        return response

    def process_exception(self, request: Request, exception: Exception) -> None:
        self.settle(request, 0)
        return None

    def _release_stale(self, request: Request) -> None:
        """A request back for another attempt: its earlier reservation (if still open here) is released."""
        if META_RESERVED in request.meta:
            self.settle(request, 0)

    def settle(self, request_or_meta: Any, actual: int, apps: dict[str, int] | None = None) -> None:
        """The attempt cost ``actual`` micro-dollars (``apps``: by app): its reservation becomes that."""
        meta = getattr(request_or_meta, "meta", request_or_meta)
        held = meta.pop(META_RESERVED, None)
        if held is None:
            return
        token, job, amount = held
        token = tuple(token)
        if self.outstanding.pop(token, None) is None:
            amount, token = 0, None  # released already (a copy of the request), or reserved by another process
        if amount or actual:
            self._book().settle(job, amount, actual, apps, token)

    def charge_unreserved(self, job: str, actual: int, apps: dict[str, int] | None = None) -> None:
        """A page that cost money without a reservation (no budget): still the job's spend."""
        if actual:
            self._book().record(job, actual, apps)

    def spider_closed(self) -> None:
        from tweetform.cost.middleware import cost_middleware

        if self._watch is not None and self._watch.running:
            self._watch.stop()
        cost = cost_middleware(self.crawler)
        if cost is not None:  # pages whose cost Redis never answered are settled first (at the most they may cost)
            cost.finish()
        for token, (job, amount) in list(self.outstanding.items()):
            self._book().settle(job, amount, 0, None, token)
        self.outstanding.clear()
        close = getattr(self.book, "close", None)
        if close is not None:
            close()


def budget_middleware(crawler: Crawler) -> BudgetMiddleware | None:
    """The crawler's BudgetMiddleware; None when it is not enabled or there is no engine yet
    (a middleware tested on its own)."""
    try:
        return crawler.get_downloader_middleware(BudgetMiddleware)
    except RuntimeError:
        return None
