"""``stream``: the filtered stream, written to the ``stream`` bucket as it arrives.

``scrapy crawl stream [-a max_tweets=N] [-a duration=SECONDS] [-a backfill_minutes=M] [-a budget=USD]
[-a credential=ALIAS]`` holds the app's streaming connection (:mod:`tweetform.stream.client`:
keep-alives, silence, reconnects with back-off and backfill) and yields each delivered post
from ``start()`` as a page item — the line as the API sent it (``data``, ``includes``,
``matching_rules``) plus provenance — for the bucket pipeline. The key is the UTC day the post
was created; a post comes once per job however often backfill sends it again (by id here, and by
``page_id`` in the bucket file). Each post is charged by the billing rule as it arrives, and the
stream stops (``budget_exhausted``, exit 7) when what is left of the budget cannot pay for one more:
checked before it connects (a budget below one post writes nothing) and after each post.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import aclosing
from typing import Any, AsyncIterator, ClassVar

import redis
from scrapy import signals
from scrapy.exceptions import CloseSpider

from tweetform.api.endpoints import V2_TWEET_PARAMS
from tweetform.cost import dollars, micro
from tweetform.api.pricing import POST, price
from tweetform.cost.budget import budget_middleware
from tweetform.cost.middleware import cost_middleware
from tweetform.cost.rule import unit_cost
from tweetform.credentials import load_credentials
from tweetform.items import make_page, page_id, utc_now
from tweetform.job import ArgumentError, JobArgs
from tweetform.spiders.arguments import parse_args
from tweetform.spiders.base import ApiSpider
from tweetform.stream import MAX_BACKFILL_MINUTES, STREAM_PATH
from tweetform.stream.app import StreamSetupError, app_credential
from tweetform.stream.client import Delivered, StreamClient, StreamStopped

logger = logging.getLogger(__name__)
POSTS = "stream_posts"  # the job's counter (job store; JOBDIR keeps it): posts written, across its runs


def _whole(raw: Any, name: str, lo: int, hi: int | None = None) -> int:
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ArgumentError(f"{name} must be a whole number, not {raw!r}") from None
    if value < lo or (hi is not None and value > hi):
        raise ArgumentError(f"{name} must be {f'between {lo} and {hi}' if hi is not None else f'at least {lo}'}, not {value}")
    return value


class StreamSpider(ApiSpider):
    name = "stream"
    seeds = "none"
    distributed = False  # one connection per app, in one process: never a job of scrapy push / workers
    arguments: ClassVar[frozenset[str]] = frozenset({"max_tweets", "duration", "backfill_minutes", "credential"})

    @classmethod
    def default_bucket(cls, raw: dict[str, Any]) -> str:
        return "stream"

    @classmethod
    def parse_arguments(cls, raw: dict[str, Any], default_api: str = "2") -> JobArgs:
        job = parse_args(cls.name, raw, allowed=cls.arguments, default_bucket="stream", default_api="2", seeds="none")
        if job.api != "2":
            raise ArgumentError("the filtered stream is API v2 only (api=2)")
        cls.stream_options(raw)  # checked now too: one line before anything starts
        return job

    @classmethod
    def stream_options(cls, raw: dict[str, Any]) -> dict[str, Any]:
        """duration (seconds, None: until stopped), backfill_minutes (asked on reconnects), credential (alias or None)."""
        duration = raw.get("duration")
        credential = str(raw["credential"]).strip() if raw.get("credential") is not None else None
        if credential == "":
            raise ArgumentError("credential is empty: give the alias of an app-only credential")
        return {
            "duration": _whole(duration, "duration", 1) if duration is not None else None,
            "backfill_minutes": _whole(raw.get("backfill_minutes", MAX_BACKFILL_MINUTES), "backfill_minutes", 0, MAX_BACKFILL_MINUTES),
            "credential": credential,
        }

    @classmethod
    def plan_note(cls, job: JobArgs) -> str:
        """What ``scrapy plan stream`` can say: nothing is requested ahead, it costs what its rules match."""
        most = unit_cost(STREAM_PATH, V2_TWEET_PARAMS)
        budget = f"; with budget ${job.budget:g} it stops when less than ${most:g} is left" if job.budget else ""
        limit = f", at most {job.max_tweets:,} posts (${job.max_tweets * most:,.2f} at most)" if job.max_tweets else ""
        return (f"the filtered stream requests nothing ahead: it costs what the app's rules match as it runs, "
                f"${price(POST):g} a post delivered plus its includes (at most ${most:g} a post; each resource once per "
                f"app and UTC day){limit}{budget}")

    @classmethod
    def check_settings(cls, raw: dict[str, Any], settings: Any) -> None:
        """Before the crawl: the options and the app credential (one line, exit 2, if either is wrong)."""
        options = cls.stream_options(raw)
        try:
            app_credential(load_credentials(settings), options["credential"])
        except StreamSetupError as exc:
            raise ArgumentError(str(exc)) from None

    def first_requests(self, job: JobArgs) -> list[Any]:
        return []  # no requests: start() reads the stream itself

    async def start(self) -> AsyncIterator[Any]:
        job = self.given_job
        if job is None:
            return  # a worker: a stream is one process's connection, never a job from Redis
        options = self.stream_options(self.raw_args)
        resumed = self.store.load(job.job) is not None  # JOBDIR: asks for backfill at once, for the time it was stopped
        self.start_job(job)
        cred = app_credential(load_credentials(self.settings), options["credential"])
        client = StreamClient(self.api_base, cred, dict(V2_TWEET_PARAMS), backfill_minutes=options["backfill_minutes"],
                              read_timeout=self.settings.getfloat("TWEETFORM_STREAM_READ_TIMEOUT"), stats=self.crawler.stats,
                              backfill_first=resumed)
        deadline = time.monotonic() + options["duration"] if options["duration"] else None
        seen: set[str] = set()
        # max_tweets bounds the job: the posts its earlier runs wrote count (backfill sends some again: not counted)
        before = written = self.store.status(job.job).counters.get(POSTS, 0)
        budget = _Budget(self.crawler, job, unit_cost(STREAM_PATH, V2_TWEET_PARAMS))
        if budget.spent_up():  # less than one post's worth left (a small budget, or a resumed job): not even a connection
            raise CloseSpider("budget_exhausted")
        outcomes = _Outcomes(self.crawler)
        try:
            async with aclosing(client.deliveries(deadline)) as deliveries:  # a break closes the connection at once
                while job.max_tweets is None or written < job.max_tweets:
                    delivered = await anext(deliveries, None)
                    if delivered is None:
                        break
                    item = self.post_item(job, cred.alias, client.url(0), delivered, seen)
                    if item is None:
                        continue
                    outcome = outcomes.expect(item)
                    yield item  # what is left paid for it: checked before the connection and after each post
                    budget.charge(item, delivered.at)
                    if await outcome:  # written (not a page an earlier run wrote): the job's count, kept at once
                        written += 1
                        self.store.progress(job.job, **{POSTS: 1})
                        self.store.flush()
                    if budget.spent_up():  # the next post could not be paid for: close before it comes
                        raise CloseSpider("budget_exhausted")
                else:
                    logger.info("stream: max_tweets reached (%d posts written for the job)", written)
        except StreamStopped as exc:
            self.refuse(exc.reason, exc.line)
        except StreamSetupError as exc:
            self.refuse("no_usable_credentials", str(exc))
        finally:
            outcomes.close()
        logger.info("stream: %d posts written in %d connection(s), %d keep-alive(s) read", written - before,
                    client.connections, client.keepalives)

    def refuse(self, reason: str, line: str) -> None:
        logger.error("stream stopped: %s", line)
        self.crawler.stats.set_value("tweetform/stream/stopped", line)
        raise CloseSpider(reason)

    def post_item(self, job: JobArgs, alias: str, url: str, delivered: Delivered, seen: set[str]) -> Any:
        """The page item of one delivered post, or None for a post this job has already (backfill)."""
        data = delivered.body.get("data")
        tid = str(data.get("id")) if isinstance(data, dict) else ""
        if not tid or tid in seen:
            self.crawler.stats.inc_value("tweetform/stream/duplicates" if tid else "tweetform/stream/bad_lines")
            return None
        seen.add(tid)
        self.crawler.stats.inc_value("tweetform/stream/posts")
        created = str(data.get("created_at") or "")
        day = created[:10] if len(created) >= 10 else time.strftime("%Y-%m-%d", time.gmtime(delivered.at))
        prov = {
            "url": url, "endpoint": STREAM_PATH, "api_version": "2", "retrieved_at": utc_now(), "job": job.job,
            "credential": alias, "connection": delivered.connection, "bucket": job.bucket, "key": day,
            "page_id": page_id(job.job, job.bucket, day, f"{STREAM_PATH}#{tid}"),
        }
        return make_page(delivered.body, delivered.raw, prov)


class _Outcomes:
    """Whether the item pipelines wrote a post: the spider waits for each (a few ms) to count the job's posts
    exactly, so max_tweets stops the connection right after the last post, not when one more arrives."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.waiting: dict[int, asyncio.Future[bool]] = {}
        for signal in (signals.item_scraped, signals.item_dropped, signals.item_error):
            crawler.signals.connect(self.done, signal=signal)

    def expect(self, item: Any) -> "asyncio.Future[bool]":
        """Before the item is yielded: its outcome, True when it was written (not skipped, dropped or failed)."""
        future = self.waiting[id(item)] = asyncio.get_running_loop().create_future()
        return future

    def done(self, item: Any, signal: Any = None, **kwargs: Any) -> None:
        future = self.waiting.pop(id(item), None)
        if future is not None and not future.done():
            future.set_result(signal is signals.item_scraped and not getattr(item, "skipped", False))

    def close(self) -> None:
        for signal in (signals.item_scraped, signals.item_dropped, signals.item_error):
            self.crawler.signals.disconnect(self.done, signal=signal)


class _Budget:
    """What the stream costs, post by post (the cost middleware's ledger), against the job's budget.

    Posts come unasked, so nothing can be reserved before: the stream stops as soon as what is left
    cannot pay for one more post (with what its expansions may add), and is never overspent by the
    posts it writes. (Posts the API had already sent when the connection closed may still be billed.)"""

    def __init__(self, crawler: Any, job: JobArgs, unit_usd: float) -> None:
        self.crawler = crawler
        self.job = job
        self.cost = cost_middleware(crawler)
        self.book = budget_middleware(crawler)
        self.budget = self.book.budget_of(job.job) if self.book is not None else 0
        self.spent = self.book._book().total_spent(job.job) if self.book is not None and self.budget else 0
        self.unit = micro(unit_usd)
        self.unsure = 0  # posts billed whose cost the ledger has not told yet, at the most a post may cost

    def charge(self, item: Any, at: float) -> None:
        """Bill one post; with REDIS_URL a lost answer neither ends the stream nor is billed twice (the ledger sends
        the call again and counts the post at the most its ids may cost): until told, it counts as one post's most."""
        if self.cost is None:
            return
        self.unsure += self.unit
        self.cost.charge_item_later(item, time.strftime("%Y-%m-%d", time.gmtime(at)), self._charged)

    def _charged(self, cost: int, beyond: int, app: str) -> None:
        self.unsure -= self.unit
        spent = cost + beyond
        self.spent += spent
        if spent and self.book is not None:
            try:
                self.book.charge_unreserved(self.job.job, spent, {app: spent})
            except redis.RedisError:
                pass  # kept in the book (RedisBudget.record) and sent with its next flush, at the latest when it closes

    def spent_up(self) -> bool:
        if not self.budget or self.budget - self.spent - self.unsure >= self.unit:
            return False
        if self.book is not None:
            self.book.out_of_budget[self.job.job] = 1  # the manifest says stopped_by: budget
            self.book._book().exhausted(self.job.job)
        logger.error("job %s stopped at its budget: spent %s of %s (%s left, less than one more post may cost)",
                     self.job.job, dollars(self.spent), dollars(self.budget), dollars(max(0, self.budget - self.spent)))
        return True
