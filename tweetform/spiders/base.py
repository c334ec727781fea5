"""What every tweetform spider shares: arguments, API requests, page handling.

A spider builds requests with :meth:`ApiSpider.api_request`; every answer comes
back to :meth:`ApiSpider.parse_page`, which classifies it once
(:mod:`tweetform.api.errors`), yields the page and any per-account errors as
items, and hands the parsed body to the subclass's :meth:`on_page` to follow
pagination and expand the crawl.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, AsyncIterator, ClassVar, Iterable, Iterator

import orjson
import redis
import scrapy
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from twisted.python.failure import Failure

from tweetform.config import uses_redis
from tweetform import state
from tweetform.cost import budget_text
from tweetform.api import errors
from tweetform.api import bluesky
from tweetform.api.endpoints import BLUESKY, ENDPOINTS, Endpoint, next_page_params, page_size_param
from tweetform.job import JobArgs
from tweetform.items import PageItem, make_error, make_page, page_id, utc_now
from tweetform.middlewares.callback_errors import CallbackErrorMiddleware
from tweetform.middlewares.pacing import META_NOT_BEFORE
from tweetform.meta import BILL_UNWRITTEN, META_CREDENTIAL, META_CTX, META_DELIVERY, META_ENDPOINT
from tweetform.state.base import JobStore
from tweetform.state.redis.connection import redis_away
from tweetform.spiders.arguments import parse_args

logger = logging.getLogger(__name__)


def parse_body(body: bytes) -> Any:
    """The JSON of an answer, or None when it is not complete JSON (orjson: ~1.5x json's speed)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        try:
            return json.loads(body)  # e.g. integers past 64 bits, which orjson refuses
        except ValueError:
            return None


#: the list member of each Bluesky answer
BLUESKY_LISTS = ("follows", "followers", "feed", "posts", "profiles", "repostedBy", "likes")


def objects_in_page(body: Any) -> int:
    """How many objects (tweets, users, lists) one page of a list endpoint holds, in either API version."""
    if isinstance(body, list):
        return len(body)
    if isinstance(body, dict):
        if "statuses" in body:
            return len(body["statuses"])
        for member in BLUESKY_LISTS:
            if isinstance(body.get(member), list):
                return len(body[member])
        data = body.get("data")
        return len(data) if isinstance(data, list) else 0
    return 0


def shrink_page(endpoint: Endpoint, params: dict[str, Any], remaining: int) -> dict[str, Any]:
    """Ask for no more than is still wanted (within each endpoint's minimum page size)."""
    name = page_size_param(params)
    if name is None:
        return params
    return {**params, name: max(endpoint.min_page, min(int(params[name]), remaining))}


class ApiSpider(scrapy.Spider):
    """Base of the six crawl types. Subclasses set the class attributes and ``on_page``."""

    arguments: ClassVar[frozenset[str]] = frozenset()
    seeds: ClassVar[str] = "users"  # "users", "tweets", "query" or "lists"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raw = {k: v for k, v in kwargs.items() if k not in ("_job", "settings")}
        super().__init__(*args)
        self.raw_args = raw
        self.given_job: JobArgs | None = kwargs.get("_job")

    @property
    def store(self) -> JobStore:
        """The crawler's job store (looked up on use: the spider is made before the crawler's extensions)."""
        return job_store(self.crawler)

    @classmethod
    def default_bucket(cls, raw: dict[str, Any]) -> str:
        raise NotImplementedError

    @classmethod
    def seeds_of(cls, raw: dict[str, Any]) -> str:
        """What the seeds of a job are ("users", "tweets", "query" or "lists"); a spider may decide by argument."""
        return cls.seeds

    @classmethod
    def parse_arguments(cls, raw: dict[str, Any], default_api: str = "2") -> JobArgs:
        """Validate arguments without a crawler (used by ``scrapy crawl`` before it starts)."""
        return parse_args(
            cls.name, raw, allowed=cls.arguments, default_bucket=cls.default_bucket(raw), default_api=default_api,
            seeds=cls.seeds_of(raw),
        )

    @classmethod
    def endpoints_for(cls, job: JobArgs) -> list[str]:
        """The endpoints a job will call (``scrapy crawl`` checks that some credential may call each); [] unknown."""
        return []

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> "ApiSpider":
        spider = super().from_crawler(crawler, *args, **kwargs)
        if spider.given_job is None and (spider.raw_args or not uses_redis(crawler.settings)):
            spider.given_job = cls.parse_arguments(spider.raw_args, str(crawler.settings.get("TWEETFORM_API_VERSION")))
        spider.api_base = crawler.settings.get("TWEETFORM_API_BASE").rstrip("/")
        # where each endpoint's host is (Endpoint.host): X's, Bluesky's AppView and PDS
        spider.api_bases = {"x": spider.api_base, "appview": (crawler.settings.get("TWEETFORM_BLUESKY_APPVIEW") or "").rstrip("/"),
                            "pds": (crawler.settings.get("TWEETFORM_BLUESKY_PDS") or "").rstrip("/")}
        spider.pages_failed = 0
        return spider

    # --- requests ------------------------------------------------------------------

    def api_request(
        self, job: JobArgs, endpoint: str | Endpoint, params: dict[str, Any], *, key: str, path_id: Any = None, depth: int = 1,
        source: int | None = None, extra: dict[str, Any] | None = None, priority: int = 0, callback: Any = None,
    ) -> scrapy.Request:
        ep = ENDPOINTS[endpoint] if isinstance(endpoint, str) else endpoint
        ctx = {"job": job.job, "params": params, "path_id": path_id, "key": key, "depth": depth, "source": source, **(extra or {})}
        return scrapy.Request(
            ep.url(self.api_bases[ep.host], params, path_id),
            callback=callback or self.parse_page,
            errback=self.on_failure,
            priority=priority,
            meta={META_ENDPOINT: ep.key, META_CTX: ctx, "handle_httpstatus_all": True},
        )

    def next_page(self, response: Response, body: Any, remaining: int | None = None) -> scrapy.Request | None:
        """The request for the page after this one; ``remaining`` shrinks its size to what is still wanted."""
        ep = ENDPOINTS[response.meta[META_ENDPOINT]]
        ctx = response.meta[META_CTX]
        params = next_page_params(ep, ctx["params"], body)
        if params is None:
            return None
        if remaining is not None:
            params = shrink_page(ep, params, remaining)
        extra = {k: v for k, v in ctx.items() if k not in ("job", "params", "path_id", "key", "depth", "source")}
        extra["page_no"] = ctx.get("page_no", 0) + 1
        return self.api_request(self.job_of(response), ep, params, key=ctx["key"], path_id=ctx["path_id"], depth=ctx["depth"], source=ctx["source"], extra=extra)

    def follow(self, response: Response, body: Any, limit: int | None) -> Iterator[scrapy.Request]:
        """The next page of this list, unless ``limit`` objects of it have been seen (``max_tweets``,
        ``max_users``); the page that reaches the limit asks for no more than is left."""
        seen = response.meta[META_CTX].get("seen", 0) + objects_in_page(body)
        if limit is not None and seen >= limit:
            return
        nxt = self.next_page(response, body, remaining=None if limit is None else limit - seen)
        if nxt is not None:
            nxt.meta[META_CTX]["seen"] = seen
            yield nxt

    # --- answers ---------------------------------------------------------------------

    def job_of(self, response: Response) -> JobArgs:
        job_id = response.meta[META_CTX]["job"]
        job = self.store.load(job_id)
        if job is None:
            raise IgnoreRequest(f"job {job_id!r} is gone (cancelled or cleared)")
        return job

    def provenance(self, response: Response, key: str, bucket: str) -> dict[str, Any]:
        ctx = response.meta[META_CTX]
        endpoint = response.meta[META_ENDPOINT]
        return {
            "url": response.url,
            "endpoint": endpoint,
            "api_version": ENDPOINTS[endpoint].version,
            "retrieved_at": utc_now(),
            "job": ctx["job"],
            "credential": response.meta.get(META_CREDENTIAL),
            "depth": ctx["depth"],
            "source_user_id": str(ctx["source"]) if ctx.get("source") is not None else None,
            "bucket": bucket,
            "key": key,
            "page_id": page_id(str(ctx["job"]), bucket, key, response.url),
            **({"since": ctx["since"]} if ctx.get("since") else {}),  # api=bluesky since_id=auto (spiders/timeline.py)
        }

    def error_item(self, response: Response, reason: str, target: Any, outcome: errors.Outcome | None, body: Any) -> PageItem:
        job_id = response.meta[META_CTX]["job"]
        prov = self.provenance(response, job_id, "errors")
        prov["page_id"] = page_id(job_id, "errors", job_id, f"{response.url}#{target}")
        self.crawler.stats.inc_value(f"tweetform/errors/{reason}")
        status = outcome.status if outcome else response.status
        return make_error(reason, str(target), status, outcome.code if outcome else None, outcome.message if outcome else "", body, prov)

    def finished(self, request: scrapy.Request) -> None:
        """The request's output has all been consumed (distributed mode: no longer in flight)."""
        state.request_finished(self.crawler, request)

    def parse_page(self, response: Response) -> Iterator[Any]:
        yield from self._shared_state_safe(response, self._parse_page)

    def _shared_state_safe(self, response: Response, handle: Any) -> Iterator[Any]:
        """Run a callback; if shared job state (Redis) is away, fetch the page again later.

        What the callback already yielded is safe to repeat: output is exactly-once,
        requests pass the job's dupe filter and user claims are idempotent.

        Every distributed callback's output passes here with its response: its pages learn how the worker got their
        request (``PageItem.delivery``), so the bucket pipeline asks Redis whether a page is written only when
        another worker may have fetched it too (:meth:`tweetform.state.redis.node.Lease.proves_only_writer`)."""
        delivery = response.meta.get(META_DELIVERY)
        try:
            for out in handle(response):
                if delivery is not None and isinstance(out, PageItem):
                    out.delivery = delivery
                yield out
        except redis.RedisError as exc:
            if not redis_away(exc):
                raise  # Redis answered with an error (OOM, WRONGTYPE…): CallbackErrorMiddleware fails the page
            logger.warning("job state unreachable (%s): %s will be fetched again", type(exc).__name__, response.url)
            again = response.request.replace(dont_filter=True)
            again.meta[META_NOT_BEFORE] = time.time() + 2.0
            yield again
            return
        self.finished(response.request)

    def _parse_page(self, response: Response) -> Iterator[Any]:
        endpoint = response.meta[META_ENDPOINT]
        version = ENDPOINTS[endpoint].version
        body = parse_body(response.body)
        outcome = errors.classify(response.status, body, version)
        if outcome.kind in (errors.INVALID_BODY, errors.SERVER):
            retry = get_retry_request(response.request, spider=self, reason=f"tweetform_{outcome.kind}")
            if retry is not None:
                yield retry
                return
        if outcome.kind == errors.OK:
            yield from self.handle_ok(response, body)
            return
        if outcome.final:
            target = self.target_of(response)
            yield self.error_item(response, outcome.kind, target, outcome, body)
            yield from self.on_account_error(response, outcome)
            return
        yield from self.page_failed(response, outcome, body)

    def handle_ok(self, response: Response, body: Any) -> Iterator[Any]:
        ctx = response.meta[META_CTX]
        partial = errors.partial_errors(body)
        for kind, err in partial:
            target = err.get("resource_id") or err.get("value") or self.target_of(response)
            yield self.error_item(response, kind if kind in errors.RECORDED else "failed", target, None, err)
        has_data = not (isinstance(body, dict) and partial and "data" not in body and "meta" not in body)
        if has_data:
            key = str(ctx["key"])
            yield make_page(body, response.body, self.provenance(response, key, self.job_of(response).bucket))
        elif not isinstance(body, dict) or "data" not in body:
            yield from self.on_account_error(response, None)
            return
        yield from self.on_page(response, body)

    def page_failed(self, response: Response, outcome: errors.Outcome | None, body: Any) -> Iterator[Any]:
        """A page that could not be fetched in the end: counted, logged, recorded."""
        self.pages_failed += 1
        self.crawler.stats.inc_value("tweetform/pages/failed")
        what = outcome.kind if outcome else "failed"
        logger.error("page failed for good (%s, HTTP %s): %s", what, response.status, response.url)
        yield self.error_item(response, "failed", self.target_of(response), outcome, body)
        yield from self.on_account_error(response, outcome)

    def on_failure(self, failure: Failure) -> Iterator[Any]:
        """Network errors after Scrapy's retries, or a request dropped: never silent."""
        request = failure.request  # type: ignore[attr-defined]
        if failure.check(IgnoreRequest):
            return  # not sent (e.g. no usable credential: the crawl stops and the request stays queued)
        fake = Response(request.url, status=0, request=request)
        try:
            yield from self._shared_state_safe(fake, lambda r: self._failed_for_good(r, failure))
        except Exception as exc:  # an errback's output skips spider middlewares: CallbackErrorMiddleware's rule here
            handled = CallbackErrorMiddleware(self.crawler).handle(fake, exc, self)
            if handled is None:
                raise
            yield from handled

    def _failed_for_good(self, fake: Response, failure: Failure) -> Iterator[Any]:
        self.pages_failed += 1
        self.crawler.stats.inc_value("tweetform/pages/failed")
        logger.error("page failed for good (%s): %s", failure.getErrorMessage()[:200] or failure.type.__name__, fake.url)
        yield self.error_item(fake, "failed", self.target_of(fake), errors.Outcome("failed", 0, None, failure.type.__name__), None)
        yield from self.on_account_error(fake, None)

    def target_of(self, response: Response) -> str:
        ctx = response.meta[META_CTX]
        if ctx.get("source") is not None:
            return str(ctx["source"])
        return str(ctx.get("target") or ctx["key"])

    # --- hooks -------------------------------------------------------------------------

    def on_page(self, response: Response, body: Any) -> Iterable[Any]:
        """Follow pagination (and expand the crawl); default: next page only."""
        nxt = self.next_page(response, body)
        if nxt is not None:
            yield nxt

    def on_account_error(self, response: Response, outcome: errors.Outcome | None) -> Iterable[Any]:
        """A request ended without data (account error or failure); spiders may need to know."""
        return ()

    async def start(self) -> AsyncIterator[Any]:
        if self.given_job is not None:
            for request in self.start_job(self.given_job):
                yield request
        # the engine scheduled every request yielded above before asking for more: the seeds are all queued
        self.start_exhausted = True

    def start_job(self, job: JobArgs) -> Iterable[scrapy.Request]:
        """Register a job and yield its first requests."""
        self.store.save(job)
        where = ("handing its pages to scrapy collect" if self.settings.getbool("TWEETFORM_COLLECT")
                 else f"writing to {self.settings.get('TWEETFORM_OUTPUT_DIR')}/{job.bucket}")
        logger.info("job %s: %s %s, %s; %s", job.job, self.name, _describe(job), where,
                    "no cost (Bluesky: $0 a request)" if job.api == "bluesky" else budget_text(job.budget, self.settings))
        again = self.settings.get("TWEETFORM_CONTINUE")
        if again and job is self.given_job:
            logger.info("job %s keeps its queue and state in %s: after any stop, `%s` continues it",
                        job.job, self.settings.get("JOBDIR"), again)
        return self.first_requests(job)

    def first_requests(self, job: JobArgs) -> Iterable[scrapy.Request]:
        raise NotImplementedError


class UserSeededSpider(ApiSpider):
    """Spiders whose seeds are users, crawled by id: screen names are resolved first."""

    def first_requests(self, job: JobArgs) -> Iterable[scrapy.Request]:
        if job.api == BLUESKY:  # DIDs as they are; each handle resolved to its DID once, through the API
            for did in dict.fromkeys(job.dids):
                yield from self.seed_user(job, did)
            for handle in dict.fromkeys(job.handles):
                yield self.api_request(job, "com.atproto.identity.resolveHandle", {"handle": handle}, key=job.job,
                                       callback=self.parse_handle, extra={"target": handle})
            return
        for uid in dict.fromkeys(job.user_ids):
            yield from self.seed_user(job, uid)
        names = list(dict.fromkeys(n.lower() for n in job.screen_names))
        for i in range(0, len(names), 100):
            batch = names[i : i + 100]
            if job.api == "2":
                yield self.api_request(job, "/2/users/by", {"usernames": ",".join(batch)}, key=job.job,
                                       callback=self.parse_names, extra={"target": ",".join(batch), BILL_UNWRITTEN: True})
            else:
                yield self.api_request(job, "/users/lookup", {"screen_name": ",".join(batch), "include_entities": "false"},
                                       key=job.job, callback=self.parse_names, extra={"target": ",".join(batch), BILL_UNWRITTEN: True})

    def parse_handle(self, response: Response) -> Iterator[Any]:
        yield from self._shared_state_safe(response, self._parse_handle)

    def _parse_handle(self, response: Response) -> Iterator[Any]:
        """Seed the DID a handle resolved to; record a handle that did not resolve."""
        body = parse_body(response.body)
        outcome = errors.classify(response.status, body, BLUESKY)
        if outcome.kind in (errors.INVALID_BODY, errors.SERVER):
            retry = get_retry_request(response.request, spider=self, reason=f"tweetform_{outcome.kind}")
            if retry is not None:
                yield retry
                return
        did = body.get("did") if outcome.kind == errors.OK and isinstance(body, dict) else None
        if isinstance(did, str) and bluesky.is_did(did):
            yield from self.seed_user(self.job_of(response), did)
        elif outcome.kind == errors.OK or outcome.final:
            yield self.error_item(response, errors.NOT_FOUND if outcome.kind == errors.OK else outcome.kind,
                                  response.meta[META_CTX]["target"], outcome, body)
        else:
            yield from self.page_failed(response, outcome, body)

    def parse_names(self, response: Response) -> Iterator[Any]:
        yield from self._shared_state_safe(response, self._parse_names)

    def _parse_names(self, response: Response) -> Iterator[Any]:
        """Seed the users a screen-name look-up found; record the names it did not."""
        asked = response.meta[META_CTX]["target"].split(",")
        body = parse_body(response.body)
        version = ENDPOINTS[response.meta[META_ENDPOINT]].version
        outcome = errors.classify(response.status, body, version)
        if outcome.kind in (errors.INVALID_BODY, errors.SERVER):
            retry = get_retry_request(response.request, spider=self, reason=f"tweetform_{outcome.kind}")
            if retry is not None:
                yield retry
                return
        users = (body.get("data") or []) if isinstance(body, dict) else (body if isinstance(body, list) else [])
        if outcome.kind not in (errors.OK, errors.NOT_FOUND):
            yield from self.page_failed(response, outcome, body)
            return
        found = {}
        for u in users:
            name = (u.get("username") or u.get("screen_name") or "").lower()
            found[name] = int(u.get("id_str") or u["id"])
        for name in asked:
            if name in found:
                yield from self.seed_user(self.job_of(response), found[name])
            else:
                reason = "not_found"
                for kind, err in errors.partial_errors(body):
                    if str(err.get("value", "")).lower() == name:
                        reason = kind
                yield self.error_item(response, reason, name, None, None)

    def seed_user(self, job: JobArgs, uid: int) -> Iterable[scrapy.Request]:
        raise NotImplementedError


def _describe(job: JobArgs) -> str:
    shown = {k: v for k, v in job.as_message().items() if k not in ("spider", "job", "bucket")}
    for k in ("user_ids", "tweet_ids", "screen_names"):
        if k in shown and len(shown[k]) > 5:
            shown[k] = f"{len(shown[k])} ids"
    return " ".join(f"{k}={v}" for k, v in shown.items())


def job_store(crawler: Crawler) -> JobStore:
    """One store per crawler, from the backend the state layer chooses (:func:`tweetform.state.job_store`)."""
    return state.job_store(crawler)


