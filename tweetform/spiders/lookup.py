"""``users`` and ``tweets``: objects by id (or screen name), 100 per request.

v1.1 drops what it cannot return without saying so; the spiders compare the
answer with what was asked and record every missing id in the ``errors``
bucket, so a look-up job accounts for each id it was given.

``skip_known=true`` (never pay twice): ids whose objects are already in the
bucket — in any earlier job's pages, plain, gzip or archived — are left out.
The process that starts the job resolves them from its output directory:
``scrapy crawl`` here (:meth:`LookupSpider.from_crawler`), ``scrapy push``
before sending the job (:func:`resolve_skip_known`), so workers on other hosts
need no copy of the data. Pages of the job itself are not counted as known, so
a resumed job asks for the same batches again (and its dupe filter skips them).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable, Iterator

import orjson
import scrapy
from scrapy.crawler import Crawler
from scrapy.http import Response

from tweetform.api import bluesky, errors
from tweetform.api.endpoints import BLUESKY, V2_TWEET_PARAMS, V2_USER_PARAMS
from tweetform.job import JobArgs
from tweetform.spiders.base import META_CTX, ApiSpider

BATCH = 100
BLUESKY_BATCH = 25  # getProfiles, getPosts
logger = logging.getLogger(__name__)


def batches(items: list, size: int = BATCH) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _objects(page: dict[str, Any]) -> list[Any]:
    if isinstance(page.get("data"), list):
        return page["data"]
    if isinstance(page.get("page"), list):
        return page["page"]
    if isinstance(page.get("id"), dict):  # statuses/lookup with map=true
        return [t for t in page["id"].values() if t]
    return []


def known_ids(output_dir: str | Path, bucket: str, exclude_job: str | None = None) -> tuple[set[int], set[str]]:
    """Ids (and lowercase screen names) of the objects already in ``<output>/<bucket>/``."""
    from tweetform.export.files import bucket_files, iter_lines
    from tweetform.items import PROVENANCE

    ids: set[int] = set()
    names: set[str] = set()
    for path in bucket_files(Path(output_dir), bucket):
        for _, line in iter_lines(path):
            try:
                page = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            prov = page.get(PROVENANCE) if isinstance(page, dict) else None
            if not isinstance(prov, dict) or prov.get("bucket") == "errors" or (exclude_job and prov.get("job") == exclude_job):
                continue
            for obj in _objects(page):
                if isinstance(obj, dict) and (obj.get("id_str") or obj.get("id")):
                    ids.add(int(obj.get("id_str") or obj["id"]))
                    name = obj.get("username") or obj.get("screen_name")
                    if name:
                        names.add(str(name).lower())
    return ids, names


def resolve_skip_known(job: JobArgs, output_dir: str | Path) -> int:
    """``skip_known=true``: leave out of ``job`` the ids already in its bucket; how many were left out."""
    if not job.skip_known:
        return 0
    ids, names = known_ids(output_dir, job.bucket, exclude_job=job.job)
    before = len(job.user_ids) + len(job.screen_names) + len(job.tweet_ids)
    job.user_ids = [i for i in job.user_ids if i not in ids]
    job.tweet_ids = [i for i in job.tweet_ids if i not in ids]
    job.screen_names = [n for n in job.screen_names if n.lower() not in names]
    return before - (len(job.user_ids) + len(job.screen_names) + len(job.tweet_ids))


class LookupSpider(ApiSpider):
    """What ``users`` and ``tweets`` share: ``skip_known``."""

    arguments = frozenset({"skip_known"})

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> "LookupSpider":
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.known: tuple[set[int], set[str]] = (set(), set())
        job = spider.given_job
        if job is not None and job.skip_known:  # this process starts the job (not a job message from Redis)
            spider.known = known_ids(crawler.settings.get("TWEETFORM_OUTPUT_DIR") or "data", job.bucket, exclude_job=job.job)
        return spider

    def wanted(self, job: JobArgs, items: Iterable[Any], names: bool = False) -> list[Any]:
        """The ids (or names) still to fetch: without duplicates and, with skip_known, without those known."""
        unique = list(dict.fromkeys(n.lower() for n in items) if names else dict.fromkeys(items))
        known = self.known[1] if names else self.known[0]
        if not job.skip_known or not known:
            return unique
        left = [i for i in unique if i not in known]
        if len(left) < len(unique):
            skipped = len(unique) - len(left)
            self.crawler.stats.inc_value("tweetform/cost/skipped_known", skipped)
            logger.info("job %s: skip_known: %d of %d %s already in bucket %s are left out (not paid again)",
                        job.job, skipped, len(unique), "screen names" if names else "ids", job.bucket)
        return left


class UsersSpider(LookupSpider):
    name = "users"

    @classmethod
    def default_bucket(cls, raw: dict[str, Any]) -> str:
        return "users"

    @classmethod
    def endpoints_for(cls, job: JobArgs) -> list[str]:
        return ["app.bsky.actor.getProfiles"] if job.api == BLUESKY else []

    def first_requests(self, job: JobArgs) -> Iterable[scrapy.Request]:
        if job.api == BLUESKY:  # DIDs and handles alike, 25 a request
            for batch in batches(list(dict.fromkeys([*job.dids, *job.handles])), BLUESKY_BATCH):
                yield self.api_request(job, "app.bsky.actor.getProfiles", {"actors": batch}, key=job.job,
                                       extra={"target": ",".join(batch), "by": "actor"})
            return
        for batch in batches(self.wanted(job, job.user_ids)):
            target = ",".join(map(str, batch))
            if job.api == "2":
                yield self.api_request(job, "/2/users", {"ids": target, **V2_USER_PARAMS}, key=job.job, extra={"target": target, "by": "id"})
            else:
                yield self.api_request(job, "/users/lookup", {"user_id": target, "include_entities": "true"}, key=job.job, extra={"target": target, "by": "id"})
        for batch in batches(self.wanted(job, job.screen_names, names=True)):
            target = ",".join(batch)
            if job.api == "2":
                yield self.api_request(job, "/2/users/by", {"usernames": target, **V2_USER_PARAMS}, key=job.job, extra={"target": target, "by": "name"})
            else:
                yield self.api_request(job, "/users/lookup", {"screen_name": target, "include_entities": "true"}, key=job.job, extra={"target": target, "by": "name"})

    def on_page(self, response: Response, body: Any) -> Iterator[Any]:
        if response.meta["tweetform_endpoint"] == "app.bsky.actor.getProfiles":  # the AppView drops them silently
            got = {x for p in bluesky.listed(body.get("profiles")) if isinstance(p, dict)
                   for x in (p.get("did"), str(p.get("handle", "")).lower())}
            for asked in response.meta[META_CTX]["target"].split(","):
                if asked not in got:
                    yield self.error_item(response, "not_found_or_suspended", asked, None, None)
            return
        if response.meta["tweetform_endpoint"] != "/users/lookup":
            return  # v2 names every missing id in its partial errors
        ctx = response.meta[META_CTX]
        by_name = ctx["by"] == "name"
        got = {(u["screen_name"].lower() if by_name else u["id_str"]) for u in body}
        for asked in ctx["target"].split(","):
            if asked not in got:
                yield self.error_item(response, "not_found_or_suspended", asked, None, None)

    def on_account_error(self, response: Response, outcome: errors.Outcome | None) -> Iterator[Any]:
        return iter(())


class TweetsSpider(LookupSpider):
    name = "tweets"
    seeds = "tweets"
    arguments = frozenset({"tweet_id", "skip_known"})

    @classmethod
    def default_bucket(cls, raw: dict[str, Any]) -> str:
        return "tweets"

    @classmethod
    def endpoints_for(cls, job: JobArgs) -> list[str]:
        return ["app.bsky.feed.getPosts"] if job.api == BLUESKY else []

    def first_requests(self, job: JobArgs) -> Iterable[scrapy.Request]:
        if job.api == BLUESKY:  # at:// post URIs, 25 a request
            for batch in batches(list(dict.fromkeys(job.uris)), BLUESKY_BATCH):
                yield self.api_request(job, "app.bsky.feed.getPosts", {"uris": batch}, key=job.job,
                                       extra={"target": " ".join(batch)})
            return
        for batch in batches(self.wanted(job, job.tweet_ids)):
            target = ",".join(map(str, batch))
            if job.api == "2":
                yield self.api_request(job, "/2/tweets", {"ids": target, **V2_TWEET_PARAMS}, key=job.job, extra={"target": target})
            else:
                params = {"id": target, "map": "true", "include_entities": "true", "tweet_mode": "extended"}
                yield self.api_request(job, "/statuses/lookup", params, key=job.job, extra={"target": target})

    def on_page(self, response: Response, body: Any) -> Iterator[Any]:
        if response.meta["tweetform_endpoint"] == "app.bsky.feed.getPosts":  # missing posts are dropped silently
            for asked in bluesky.missing_uris(body, response.meta[META_CTX]["target"].split(" ")):
                yield self.error_item(response, "not_found_or_deleted", asked, None, None)
            return
        if response.meta["tweetform_endpoint"] != "/statuses/lookup":
            return
        for tid, tweet in (body.get("id") or {}).items():
            if tweet is None:
                yield self.error_item(response, "not_found_or_protected", tid, None, None)
