"""``scrapy push SPIDER --user-id … | --legacy '<tweetf0rm JSON>'``: put a job into Redis.

The job is validated here exactly as ``scrapy crawl`` validates arguments, so a
bad one stops with one line and nothing is pushed. Any worker (``scrapy worker``
or ``scrapy crawl SPIDER`` with ``REDIS_URL``) then takes it.
"""

from __future__ import annotations

import argparse
import json

from scrapy.commands import ScrapyCommand
from scrapy.spiderloader import get_spider_loader

from tweetform.config import redis_url, uses_redis
from tweetform.commands.errors import fail, one_line_errors, redis_problem, with_redis_errors
from tweetform.commands.wait import wait_for_job
from tweetform.exitcodes import UNREACHABLE

OPTION_ARGS = ("user_id", "screen_name", "tweet_id", "list_id", "conversation_id", "file", "relation", "depth", "data_type",
               "max_users", "since_id", "max_tweets", "query", "lang", "geocode", "archive", "start_time", "end_time",
               "granularity", "bucket", "api", "job", "budget", "skip_known", "filter", "include")


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False
    default_settings = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "SPIDER [--user-id IDS | --screen-name NAMES | --file PATH | --query TEXT ...] | --legacy JSON"

    def short_desc(self) -> str:
        return "Validate a crawl job and push it into Redis for the workers"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        one_line_errors(parser)  # a bad option value: one line, exit 2
        for name in OPTION_ARGS:
            parser.add_argument("--" + name.replace("_", "-"), dest=name, metavar=name.upper())
        parser.add_argument("--plan", action="store_true",
                            help="estimate the job's requests and time first (as `scrapy plan`); `scrapy status` then shows what is left")
        parser.add_argument("--wait", action="store_true",
                            help="then block until the job ends; exit with how it ended (README: Exit status)")
        parser.add_argument("--legacy", metavar="JSON", help="a tweetf0rm command, e.g. "
                            '\'{"cmd": "CRAWL_FRIENDS", "user_id": 12, "data_type": "ids", "depth": 2, "bucket": "friend_ids"}\'')

    @with_redis_errors
    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        if not uses_redis(self.settings):
            fail("REDIS_URL is not set: pushing needs the Redis that the workers share")
        from tweetform.cost import default_budget_usd  # here: every scrapy start imports this module
        from tweetform.job import ArgumentError, check_message_size, legacy_command, message_arguments
        from tweetform.state.redis import connection, keys
        from tweetform.state.redis.jobs import RedisJobStore, from_legacy

        try:
            if opts.legacy:
                message = from_legacy(legacy_command(opts.legacy, "--legacy"))  # size, JSON, each field's type
                spider = message.pop("spider")
                raw = message_arguments(message)
            else:
                if len(args) != 1:
                    names = ", ".join(sorted(get_spider_loader(self.settings).list()))
                    fail(f"give one spider name ({names}) or --legacy")
                spider = args[0]
                raw = {name: getattr(opts, name) for name in OPTION_ARGS if getattr(opts, name) is not None}
            loader = get_spider_loader(self.settings)
            try:
                spidercls = loader.load(spider)
            except KeyError:
                fail(f"unknown spider {spider!r}; the spiders are: {', '.join(sorted(loader.list()))}")
            if not getattr(spidercls, "distributed", True):
                fail(f"{spider} holds one connection in one process and takes no jobs from Redis: run scrapy crawl {spider}")
            job = spidercls.parse_arguments(raw, str(self.settings.get("TWEETFORM_API_VERSION")))
            try:
                default_budget_usd(self.settings)  # TWEETFORM_BUDGET_USD: an amount or unlimited
            except ValueError as exc:
                raise ArgumentError(str(exc)) from None
            if job.since_ids:  # timeline since_id=auto: resolved here, from this host's output directory
                from tweetform.spiders.timeline import resolve_auto_since_ids

                resolve_auto_since_ids(job, self.settings.get("TWEETFORM_OUTPUT_DIR") or "data")
            if job.skip_known:  # ids (collections: seeds whose lists are) already in this host's bucket are left out here
                from tweetform.spiders.lookup import resolve_skip_known

                resolve = getattr(spidercls, "resolve_skip_known", None) or resolve_skip_known
                skipped = resolve(job, self.settings.get("TWEETFORM_OUTPUT_DIR") or "data")
                if skipped:
                    print(f"skip_known: {skipped} id(s) already in bucket {job.bucket} left out (not paid again)")
                if not (job.user_ids or job.screen_names or job.tweet_ids or job.list_ids or job.conversation_ids or job.all_queries
                        or job.dids or job.handles or job.uris):
                    print(f"nothing to push: every id is already in bucket {job.bucket}")
                    return
        except ArgumentError as exc:
            fail(str(exc))
        if not opts.plan:  # --plan prints the whole estimate
            from tweetform.commands.crawl import warn_if_deep

            warn_if_deep(self.settings, job)  # depth >= 3 without max_users: the plan's estimate, one line
        try:  # a worker would dead-letter a message too large to be one job: refuse it here, before anything is saved
            check_message_size(json.dumps({"spider": spider, **job.as_message()}, separators=(",", ":")), "the job message")
        except ArgumentError as exc:
            fail(str(exc))
        server = connection.from_settings(self.settings)
        RedisJobStore(server).save(job)  # known (and pausable) before a worker takes it
        if opts.plan:
            from tweetform.planning import PlanError
            from tweetform.planning_bluesky import plan_any  # either API's plan

            try:
                est, _, lookups, sampled, _, spend = plan_any(self.settings, job)
            except PlanError as exc:
                fail(f"cannot plan the job: {exc}", exc.code)
            server.hset(keys.job(job.job), "plan", json.dumps(est.as_dict()))
            if spend.micro_usd:  # the plan's look-ups and sample were billed: they are the job's spend
                from tweetform.cost.redis_budget import RedisBudget

                RedisBudget(server).settle(job.job, 0, spend.micro_usd, dict(spend.ledger.by_app))
            print(f"plan: {est.summary()}")
            print(f"this plan made {lookups + sampled} request(s), free like a crawl's" if job.api == "bluesky"
                  else f"the plan's own requests cost {spend.text()}, counted in the job's spend")
        message = {"spider": spider, **job.as_message()}
        # ids go as comma lists, the same keys as -a arguments
        for plural, single in (("user_ids", "user_id"), ("tweet_ids", "tweet_id"), ("screen_names", "screen_name"),
                               ("list_ids", "list_id"), ("conversation_ids", "conversation_id"),
                               ("dids", "user_id"), ("handles", "screen_name"), ("uris", "tweet_id")):  # api=bluesky's
            if plural in message:
                message[single] = ",".join(str(i) for i in message.pop(plural))
        if "feed_filter" in message:
            message["filter"] = message.pop("feed_filter")
        import redis

        try:
            server.rpush(keys.jobs_inbox(spider), json.dumps(message))
        except (redis.ConnectionError, redis.TimeoutError) as exc:  # the answer lost, or never sent: not knowable here
            fail(f"{redis_problem(exc, redis_url(self.settings))} while pushing job {job.job}: it may have been queued; "
                 f"push it again with --job {job.job} once Redis answers (a job pushed twice is crawled once)", UNREACHABLE)
        print(f"pushed job {job.job} to {keys.jobs_inbox(spider)}", flush=True)
        if opts.wait:
            self.exitcode = wait_for_job(server, job.job)
