"""``timeline``: a user's tweets, newest first, to the API's 3,200 cap.

v1.1 walks ``max_id`` down (lowest id seen − 1) until an empty page; v2 follows
``pagination_token``. ``since_id`` collects only tweets newer than a previous
run's newest; ``max_tweets`` stops early.

``since_id=auto`` (incremental collection): each user's timeline starts after
the newest tweet already in the job's bucket for that user, from any earlier
job (archives included), so old tweets are not paid for again. The process
that starts the job resolves it from its output directory
(:func:`resolve_auto_since_ids`: ``scrapy crawl``, and ``scrapy push``, which
sends the resolved ids in the job message as ``since_ids``); a user found only
later (by screen name) is looked up by the process that seeds it.

With ``api=bluesky`` (``getAuthorFeed`` has no ``since`` parameter) ``since_id=auto`` means after
the newest post of the DID's feed already in the bucket, by the feed's own order (its sort time:
a repost's ``indexedAt``, a post's earlier of ``createdAt`` and ``indexedAt``), resolved the same
way into ``since_ids`` as ``DID@time`` pairs. Paging stops at the first page that reaches an entry
at or before that time, and that page is written with only its newer entries (``__tweetform.since``
says after when).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Iterator

import orjson
import scrapy
from scrapy.crawler import Crawler
from scrapy.http import Response

from tweetform.api.endpoints import BLUESKY, ENDPOINTS, V2_TWEET_PARAMS
from tweetform.export.bluesky import is_pinned, posts_of_page, sort_time
from tweetform.export.files import iter_keys_lines
from tweetform.items import PROVENANCE
from tweetform.job import JobArgs
from tweetform.meta import META_CTX
from tweetform.spiders.base import UserSeededSpider, shrink_page

AUTO = "auto"
#: where full-archive search starts when no start_time is given (the API's default is 30 days; twarc2 --archive)
ARCHIVE_START = "2006-03-21T00:00:00Z"


def tweet_ids_in_page(page: dict[str, Any]) -> list[int]:
    """Tweet ids of a written timeline page (v2 ``data``, v1.1 ``page`` or ``statuses``)."""
    tweets = page.get("data") or page.get("page") or page.get("statuses") or []
    out = []
    for tweet in tweets if isinstance(tweets, list) else ():
        tid = tweet.get("id_str") or tweet.get("id") if isinstance(tweet, dict) else None
        if tid is not None and str(tid).isdigit():
            out.append(int(tid))
    return out


def _known_pages(output_dir: str | Path, bucket: str, keys: list[str], exclude_job: str | None) -> Iterator[tuple[str, dict]]:
    """``(key, page)`` of the pages already in ``<output>/<bucket>/`` for ``keys`` (files and archives), leaving
    out lines that are not pages, error records and pages of ``exclude_job`` (a resumed job starts where it first started)."""
    for key, line in iter_keys_lines(Path(output_dir), bucket, keys):
        try:
            page = json.loads(line)
        except ValueError:
            continue
        prov = page.get(PROVENANCE) if isinstance(page, dict) else None
        if isinstance(prov, dict) and prov.get("bucket") != "errors" and not (exclude_job and prov.get("job") == exclude_job):
            yield key, page


def newest_tweet_ids(output_dir: str | Path, bucket: str, uids: Iterable[int], exclude_job: str | None = None) -> dict[int, int]:
    """The newest tweet of each user already in ``<output>/<bucket>/`` (files and archives;
    users without any are left out), leaving out pages of ``exclude_job`` (a resumed job
    starts where it first started)."""
    newest: dict[int, int] = {}
    for key, page in _known_pages(output_dir, bucket, [str(u) for u in uids], exclude_job):
        ids = tweet_ids_in_page(page)
        if ids and max(ids) > newest.get(int(key), 0):
            newest[int(key)] = max(ids)
    return newest


def since_ids_of(job: JobArgs) -> tuple[dict[int, int], bool]:
    """``(user id → since id (0: none yet), whether users not listed are still to be looked up)``."""
    found: dict[int, int] = {}
    pending = False
    for part in filter(None, job.since_ids.split(",")):
        if part == AUTO:
            pending = True
        else:
            uid, tid = part.split(":")
            found[int(uid)] = int(tid)
    return found, pending


def newest_post_times(output_dir: str | Path, bucket: str, dids: Iterable[str], exclude_job: str | None = None) -> dict[str, str]:
    """api=bluesky: the sort time of the newest feed entry of each DID already in ``<output>/<bucket>/``
    (files and archives; DIDs without any are left out), leaving out pages of ``exclude_job``."""
    newest: dict[str, str] = {}
    for key, page in _known_pages(output_dir, bucket, list(dids), exclude_job):
        for entry in posts_of_page(page):
            when = sort_time(entry)
            if when and when > newest.get(key, ""):
                newest[key] = when
    return newest


def since_times_of(job: JobArgs) -> tuple[dict[str, str], bool]:
    """api=bluesky: ``(DID → newest known sort time ("": none yet), whether DIDs not listed are still to be resolved)``."""
    found: dict[str, str] = {}
    pending = False
    for part in filter(None, job.since_ids.split(",")):
        if part == AUTO:
            pending = True
        else:
            did, _, when = part.rpartition("@")
            found[did] = "" if when == "0" else when
    return found, pending


def _resolve_bluesky(job: JobArgs, output_dir: str | Path) -> None:
    found, pending = since_times_of(job)
    if not pending:
        return
    todo = [did for did in dict.fromkeys(job.dids) if did not in found]
    newest = newest_post_times(output_dir, job.bucket, todo, exclude_job=job.job)
    for did in todo:
        found[did] = newest.get(did, "")
    parts = [f"{did}@{when or 0}" for did, when in found.items()]
    job.since_ids = ",".join(parts + ([AUTO] if job.handles else []))


def resolve_auto_since_ids(job: JobArgs, output_dir: str | Path) -> None:
    """``since_id=auto``: the seed users' since ids from the output directory, into the job
    (``since_ids``); screen-name seeds stay to be looked up when their id is known."""
    if job.api == BLUESKY:
        _resolve_bluesky(job, output_dir)
        return
    found, pending = since_ids_of(job)
    if not pending:
        return
    todo = [uid for uid in dict.fromkeys(job.user_ids) if uid not in found]
    newest = newest_tweet_ids(output_dir, job.bucket, todo, exclude_job=job.job)
    for uid in todo:
        found[uid] = newest.get(uid, 0)
    parts = [f"{uid}:{tid}" for uid, tid in found.items()]
    job.since_ids = ",".join(parts + ([AUTO] if job.screen_names else []))


class SinceIdSpider(UserSeededSpider):
    """``since_id`` and ``since_id=auto`` for the spiders that page a user's tweets newest first (timeline, mentions)."""

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> "SinceIdSpider":
        spider = super().from_crawler(crawler, *args, **kwargs)
        if spider.given_job is not None:  # this process starts the job (not a job message from Redis)
            resolve_auto_since_ids(spider.given_job, spider.output_dir)
        return spider

    @property
    def output_dir(self) -> str:
        return self.settings.get("TWEETFORM_OUTPUT_DIR") or "data"

    def since_for(self, job: JobArgs, uid: int) -> int | None:
        if not job.since_ids:
            return job.since_id
        found, pending = since_ids_of(job)
        if uid in found:
            return found[uid] or None
        return newest_tweet_ids(self.output_dir, job.bucket, [uid], exclude_job=job.job).get(uid) if pending else None

    def since_time_for(self, job: JobArgs, did: str) -> str | None:
        """api=bluesky: the sort time of the newest post of ``did`` already collected (None: the whole feed)."""
        if not job.since_ids:
            return None
        found, pending = since_times_of(job)
        if did in found:
            return found[did] or None
        return newest_post_times(self.output_dir, job.bucket, [did], exclude_job=job.job).get(did) if pending else None


class TimelineSpider(SinceIdSpider):
    name = "timeline"
    arguments = frozenset({"since_id", "since_ids", "max_tweets", "archive", "start_time", "end_time", "filter"})

    @classmethod
    def default_bucket(cls, raw: dict[str, Any]) -> str:
        return "timelines"

    @classmethod
    def endpoints_for(cls, job: JobArgs) -> list[str]:
        if job.api == BLUESKY:
            return ["app.bsky.feed.getAuthorFeed"]
        if job.api != "2":
            return ["/statuses/user_timeline"]
        return ["/2/tweets/search/all" if job.archive else "/2/users/:id/tweets"]

    def seed_user(self, job: JobArgs, uid: Any) -> Iterable[scrapy.Request]:
        if job.api == BLUESKY:  # posts and reposts, newest first, the filter passed through; no cap
            params: dict[str, Any] = {"actor": uid, "limit": 100, "filter": job.feed_filter}
            if job.max_tweets:
                params = shrink_page(ENDPOINTS["app.bsky.feed.getAuthorFeed"], params, job.max_tweets)
            since = self.since_time_for(job, uid)
            yield self.api_request(job, "app.bsky.feed.getAuthorFeed", params, key=uid, source=uid,
                                   extra={"seen": 0, **({"since": since} if since else {})})
            return
        since_id = self.since_for(job, uid)
        if job.api == "2":
            # archive=true: past the 3,200 cap through full-archive search (twarc2 timeline --use-search)
            endpoint = "/2/tweets/search/all" if job.archive else "/2/users/:id/tweets"
            params: dict[str, Any] = {"max_results": ENDPOINTS[endpoint].pages[1], **V2_TWEET_PARAMS}
            if job.archive:
                params = {"query": f"from:{uid}", **params, "start_time": job.start_time or ARCHIVE_START}
            elif job.start_time:
                params["start_time"] = job.start_time
            if job.end_time:
                params["end_time"] = job.end_time
            if since_id:
                params["since_id"] = since_id
            if job.max_tweets:
                params = shrink_page(ENDPOINTS[endpoint], params, job.max_tweets)
            path_id = None if job.archive else uid
            yield self.api_request(job, endpoint, params, key=str(uid), path_id=path_id, source=uid, extra={"seen": 0})
        else:
            params = {"user_id": uid, "count": 200, "include_rts": "true", "tweet_mode": "extended"}
            if since_id:
                params["since_id"] = since_id
            if job.max_tweets:
                params = shrink_page(ENDPOINTS["/statuses/user_timeline"], params, job.max_tweets)
            yield self.api_request(job, "/statuses/user_timeline", params, key=str(uid), source=uid, extra={"seen": 0})

    def handle_ok(self, response: Response, body: Any) -> Iterator[Any]:
        """api=bluesky after a known post (``since``): the page keeps only the entries newer than it; an entry
        at or before it (a pinned post aside) is where the new ones end: no page after this one."""
        since = response.meta[META_CTX].get("since")
        if since and isinstance(body, dict) and isinstance(body.get("feed"), list):
            feed = [entry for entry in body["feed"] if isinstance(entry, dict)]
            times = [sort_time(entry) for entry in feed]
            new = [entry for entry, when in zip(feed, times) if when is None or when > since]
            if len(new) < len(body["feed"]):
                body = {**body, "feed": new}
                response = response.replace(body=orjson.dumps(body))
            if any(when is not None and when <= since and not is_pinned(e) for e, when in zip(feed, times)):
                response.meta[META_CTX]["since_reached"] = True
        yield from super().handle_ok(response, body)

    def on_page(self, response: Response, body: Any) -> Iterator[Any]:
        if response.meta[META_CTX].get("since_reached"):
            return  # the rest of the feed was collected before
        yield from self.follow(response, body, self.job_of(response).max_tweets)
