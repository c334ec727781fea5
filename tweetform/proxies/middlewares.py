"""scrapy-rotating-proxies, thinly subclassed: pinning, the API's ban policy, no deprecation noise.

:class:`RotatingProxyMiddleware` keeps the library's machinery — proxies
``unchecked``/``good``/``dead``, dead ones tried again after a randomized
exponential back-off (``ROTATING_PROXY_BACKOFF_BASE``/``_CAP``), a request that
met a dead proxy retried through another (``ROTATING_PROXY_PAGE_RETRY_TIMES``)
— and adds:

* proxies from every source of :mod:`tweetform.proxies.config` (tweetf0rm's
  proxy.json, ``user:password@`` proxies whose password is never logged);
* pinning: the quota scheduler reserved the request's credential lane before
  any downloader middleware runs (``request.meta["tweetform_lane"]``), so the
  proxy is chosen among those its credential is pinned to. When all of them are
  dead the credential is *held* (:meth:`CredentialPool.hold`): the scheduler
  stops giving it requests, its reservation is given back and the request goes
  back to the queue for another credential. When one of its proxies is tried
  again (back-off over) the credential returns;
* optionally (``TWEETFORM_PROXY_CHECK_AT_START``) a check of every proxy before
  the first request, as tweetf0rm did: the failures start out dead;
* Scrapy 2.19 methods without the ``spider`` argument (the library's own
  signatures make Scrapy warn on every crawl).

:class:`BanDetectionMiddleware` is the library's, with the same treatment; the
policy is :class:`tweetform.proxies.policy.ApiBanPolicy`. It is placed above
``ApiErrorMiddleware`` (820 > 810) so that a request that never got past the
proxy gives back its quota reservation.

Proxy state is per process: in distributed mode each host rotates over its own
list (its own settings), while credentials and quota are shared through Redis.
"""

from __future__ import annotations

import logging
import random
import time
from functools import partial
from typing import Any

from rotating_proxies import middlewares as rp
from rotating_proxies.expire import Proxies, exp_backoff_full_jitter
from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider, IgnoreRequest, NotConfigured
from scrapy.http import Response
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.threads import deferToThread

from tweetform.api.endpoints import ENDPOINTS
from tweetform.meta import META_CREDENTIAL, META_ENDPOINT
from tweetform.middlewares.signing import META_TOKEN_REQUEST
from tweetform.proxies import config
from tweetform.proxies.check import DEFAULT_PATH, check_proxies, credential_chooser
from tweetform.proxies.config import hostport, redact
from tweetform.proxies.policy import describe, never_reached_api
from tweetform import state
from tweetform.quota.gate import META_LANE, human, reservation_of

logger = logging.getLogger(__name__)


class ProxyStates(Proxies):
    """The library's proxy book, with choice among allowed proxies and no password in its logs."""

    def get_random(self, allowed: frozenset[str] | None = None) -> str | None:
        available = self.unchecked | self.good
        if allowed is not None:
            available = {p for p in available if hostport(p) in allowed}
        return random.choice(sorted(available)) if available else None

    def mark_dead(self, proxy: str, _time: float | None = None) -> None:
        if proxy not in self.proxies:
            return
        self.unchecked.discard(proxy)
        self.good.discard(proxy)
        self.dead.add(proxy)
        state = self.proxies[proxy]
        state.backoff_time = self.backoff(state.failed_attempts)
        state.next_check = (_time or time.time()) + state.backoff_time
        state.failed_attempts += 1

    def mark_good(self, proxy: str) -> None:
        if proxy not in self.proxies:
            return
        self.unchecked.discard(proxy)
        self.dead.discard(proxy)
        self.good.add(proxy)
        self.proxies[proxy].failed_attempts = 0

    def alive_keys(self) -> set[str]:
        return {hostport(p) for p in self.unchecked | self.good}


class RotatingProxyMiddleware(rp.RotatingProxyMiddleware):
    def __init__(self, crawler: Crawler, plan: config.ProxyPlan, *, logstats_interval: float = 30,
                 stop_if_no_proxies: bool = False, max_proxies_to_try: int = 5, backoff_base: float = 300,
                 backoff_cap: float = 3600, check_at_start: bool = False, check_timeout: float = 10.0,
                 check_path: str = DEFAULT_PATH) -> None:
        super().__init__(plan.proxies, logstats_interval, stop_if_no_proxies, max_proxies_to_try, backoff_base,
                         backoff_cap, crawler)
        self.proxies = ProxyStates(plan.proxies, backoff=partial(exp_backoff_full_jitter, base=backoff_base, cap=backoff_cap))
        self.crawler = crawler
        self.plan = plan
        self.pool = state.pool(crawler)
        self.check_at_start = check_at_start
        self.check_timeout = check_timeout
        self.check_path = check_path
        self._all_dead_logged_at = 0.0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "RotatingProxyMiddleware":
        s = crawler.settings
        plan = config.plan(s, state.pool(crawler).credentials)
        if not plan.proxies:
            raise NotConfigured  # no proxies configured: nothing to say (a message would be a WARNING nobody can act on)
        mw = cls(
            crawler, plan,
            logstats_interval=s.getfloat("ROTATING_PROXY_LOGSTATS_INTERVAL", 30),
            stop_if_no_proxies=s.getbool("ROTATING_PROXY_CLOSE_SPIDER", False),
            max_proxies_to_try=s.getint("ROTATING_PROXY_PAGE_RETRY_TIMES", 5),
            backoff_base=s.getfloat("ROTATING_PROXY_BACKOFF_BASE", 300),
            backoff_cap=s.getfloat("ROTATING_PROXY_BACKOFF_CAP", 3600),
            check_at_start=s.getbool("TWEETFORM_PROXY_CHECK_AT_START"),
            check_timeout=s.getfloat("TWEETFORM_PROXY_CHECK_TIMEOUT", 10.0),
            check_path=s.get("TWEETFORM_PROXY_CHECK_PATH") or DEFAULT_PATH,
        )
        crawler.signals.connect(mw.engine_started, signal=signals.engine_started)
        crawler.signals.connect(mw.engine_stopped, signal=signals.engine_stopped)
        crawler.signals.connect(mw.spider_opened, signal=signals.spider_opened)
        pins = "; ".join(f"{alias} -> {', '.join(sorted(keys))}" for alias, keys in sorted(plan.pins.items()))
        logger.info("rotating over %d prox%s: %s%s", len(plan.proxies), "y" if len(plan.proxies) == 1 else "ies",
                    ", ".join(redact(p) for p in plan.proxies), f"; pinned: {pins}" if pins else "")
        return mw

    # --- choosing a proxy ---------------------------------------------------------------

    def alias_of(self, request: Request) -> str | None:
        """The credential this request will be sent with (None: not an API request)."""
        lane = request.meta.get(META_LANE)
        if lane:
            return str(lane[0])
        if request.meta.get(META_TOKEN_REQUEST):
            return request.meta.get(META_CREDENTIAL)
        key = request.meta.get(META_ENDPOINT)
        if key and self.plan.pins:  # no quota scheduler: signing takes the first usable lane
            lanes = self.pool.lanes(ENDPOINTS[key])
            return lanes[0].alias if lanes else None
        return None

    def process_request(self, request: Request) -> Request | None:
        if "proxy" in request.meta and not request.meta.get("_rotating_proxy"):
            return None  # a proxy set by the spider is respected
        alias = self.alias_of(request)
        allowed = self.plan.allowed(alias)
        proxy = self.proxies.get_random(allowed)
        if proxy is None and allowed is not None:
            return self.sit_out(request, str(alias))
        if proxy is None:
            if self.stop_if_no_proxies:
                raise CloseSpider("no_proxies")
            now = time.time()
            if now - self._all_dead_logged_at > 60:  # one line a minute, not one per request
                self._all_dead_logged_at = now
                logger.warning("no live proxy left: every dead proxy is tried again now")
            self.stats.inc_value("tweetform/proxies/all_dead_resets")
            self.proxies.reset()
            self.update_holds()
            proxy = self.proxies.get_random()
            if proxy is None:
                raise CloseSpider("no_proxies_after_reset")
        request.meta["proxy"] = proxy
        request.meta["download_slot"] = self.get_proxy_slot(proxy)
        request.meta["_rotating_proxy"] = True
        return None

    def sit_out(self, request: Request, alias: str) -> Request:
        """Every proxy of this request's credential is dead: hold the credential, requeue the request."""
        self.update_holds()
        if request.meta.get(META_TOKEN_REQUEST):
            raise IgnoreRequest(f"credential {alias!r}: every proxy it is pinned to is dead")
        reservation = reservation_of(request)
        if reservation is not None:
            state.book(self.crawler).cancel(reservation)
        retry = request.replace(dont_filter=True)
        retry.meta.pop(META_LANE, None)
        self.stats.inc_value("tweetform/proxies/requeued")
        return retry

    # --- learning from results ----------------------------------------------------------

    def process_response(self, request: Request, response: Response) -> Request | Response:
        return self._handle_result(request, f"HTTP {response.status} from the proxy") or response

    def process_exception(self, request: Request, exception: Exception) -> Request | None:
        return self._handle_result(request, describe(exception))

    def _handle_result(self, request: Request, reason: str = "") -> Request | None:  # type: ignore[override]
        proxy = self.proxies.get_proxy(request.meta.get("proxy"))
        if not (proxy and request.meta.get("_rotating_proxy")):
            return None
        ban = request.meta.get("_ban")
        result = None
        if ban is True:
            if proxy not in self.proxies.dead:  # requests in flight through it fail too: one death, one back-off step
                self.proxies.mark_dead(proxy)
                state = self.proxies.proxies[proxy]
                # INFO when a working (or new) proxy dies; a dead one failing its re-check again: DEBUG
                logger.log(logging.INFO if state.failed_attempts == 1 else logging.DEBUG,
                           "proxy %s is dead (%s): skipped, tried again in %s", redact(proxy), reason,
                           human(state.next_check - time.time()))
                self.stats.inc_value(f"tweetform/proxies/dead/{hostport(proxy)}")
                self.update_holds()
            result = self._retry(request, self.crawler.spider)
        elif ban is False:
            came_back = proxy not in self.proxies.good and self.proxies.proxies[proxy].failed_attempts > 0
            self.proxies.mark_good(proxy)
            if came_back:
                logger.info("proxy %s works again", redact(proxy))
                self.update_holds()
        self._set_stats()
        return result

    def _set_stats(self) -> None:
        p = self.proxies
        self.stats.set_value("proxies/unchecked", len(p.unchecked) - len(p.reanimated))
        self.stats.set_value("proxies/reanimated", len(p.reanimated))
        self.stats.set_value("proxies/mean_backoff", p.mean_backoff_time)
        self.stats.set_value("proxies/dead", len(p.dead))
        self.stats.set_value("proxies/good", len(p.good))

    def reanimate_proxies(self) -> None:
        n = self.proxies.reanimate()
        if n:
            logger.info("%d dead prox%s to be tried again", n, "y" if n == 1 else "ies")
            self.update_holds()

    # --- pinned credentials -------------------------------------------------------------

    def update_holds(self) -> None:
        """Hold each pinned credential whose proxies are all dead; release it when one is alive again."""
        alive = self.proxies.alive_keys()
        released = False
        for alias, keys in sorted(self.plan.pins.items()):
            if keys & alive:
                if self.pool.release(alias):
                    released = True
                    logger.info("credential %r back in rotation: a proxy it is pinned to is tried again", alias)
            elif self.pool.hold(alias, "every proxy it is pinned to is dead"):
                self.stats.inc_value(f"tweetform/proxies/held/{alias}")
                logger.warning("credential %r sits out: every proxy it is pinned to is dead (%s); it comes back "
                               "when one of them works", alias, ", ".join(sorted(keys)))
        if released:
            self._wake_engine()

    def _wake_engine(self) -> None:
        try:
            engine = self.crawler.engine
        except RuntimeError:  # not crawling yet
            return
        slot = getattr(engine, "_slot", None)  # Scrapy has no public "look at the scheduler now"
        if slot is not None:
            slot.nextcall.schedule()

    # --- checking at start (tweetf0rm's bootstrap) ------------------------------------------

    async def spider_opened(self) -> None:
        if not self.check_at_start:
            return
        creds = [c for c in self.pool.credentials if c.alias not in self.pool.retired]
        chooser = credential_chooser(creds, self.plan.credentials_for)
        base = self.crawler.settings.get("TWEETFORM_API_BASE")
        results = await maybe_deferred_to_future(deferToThread(
            check_proxies, self.plan.proxies, base, chooser, timeout=self.check_timeout, path=self.check_path))
        for r in results:
            if r.usable:
                self.proxies.mark_good(r.proxy)
            else:
                self.proxies.mark_dead(r.proxy)
                self.stats.inc_value(f"tweetform/proxies/dead/{hostport(r.proxy)}")
                logger.info("proxy %s failed the start check (%s): skipped, tried again in %s", r.shown, r.reason,
                            human(self.proxies.proxies[r.proxy].next_check - time.time()))
        usable = sum(r.usable for r in results)
        logger.info("proxy check at start: %d of %d prox%s usable", usable, len(results), "y" if len(results) == 1 else "ies")
        self._set_stats()
        self.update_holds()
        if not usable:
            logger.error("stopping: no configured proxy works (run `scrapy proxies check` for details)")
            raise CloseSpider("no_usable_proxies")


class BanDetectionMiddleware(rp.BanDetectionMiddleware):
    """Sets ``request.meta["_ban"]`` for proxied requests from ``ROTATING_PROXY_BAN_POLICY``.

    It sits above ``ApiErrorMiddleware`` (answers and failures reach it first), so
    that a request that never got past the proxy — connection to the proxy
    refused, its host unknown, no tunnel — gives its quota reservation back
    instead of being counted as a request the API may have seen.
    """

    def __init__(self, crawler: Crawler, policy: Any) -> None:
        super().__init__(crawler.stats, policy)
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "BanDetectionMiddleware":
        return cls(crawler, cls._load_policy(crawler))

    def process_response(self, request: Request, response: Response) -> Response:
        if not request.meta.get("_rotating_proxy"):
            return response
        return super().process_response(request, response, self.crawler.spider)

    def process_exception(self, request: Request, exception: Exception) -> None:
        if not request.meta.get("_rotating_proxy"):
            return None
        super().process_exception(request, exception, self.crawler.spider)
        if request.meta.get("_ban") and never_reached_api(exception):
            reservation = reservation_of(request)
            if reservation is not None:
                request.meta.pop(META_LANE, None)
                state.book(self.crawler).cancel(reservation)
        return None
