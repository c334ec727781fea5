"""One paged list per seed, driven by the endpoint row: the base of the collection spiders (issue 17).

A spider here names its endpoint (a row of :data:`tweetform.api.endpoints.ENDPOINTS`,
whose ``pages`` give the page size and ``user_only``/``app_only`` who may call it),
the fields it asks for, and which ``max_*`` argument stops a seed's list. Each seed
(a tweet, a user, a list) gets its own key in the bucket; its pages are followed to
the API's end marker (no ``next_token``), never stopped by a short page. An empty
list (a tweet nobody quoted) is one page with ``result_count: 0``, not an error; a
missing, protected or suspended seed is an ``errors`` record (the v2 partial errors).

v2 only: these endpoints have no v1.1 form. ``conversation``, ``quotes``, ``retweeted_by``,
``liking_users`` (and ``cascade``) also take ``api=bluesky`` (:attr:`PagedSpider.bluesky_endpoint`):
seeds are ``at://`` post URIs, looked up with ``getPosts`` (25 a request: the seeds' authors, and
a missing post is an ``errors`` record, as the AppView's lists of a missing post are just empty),
each list keyed by the post's ``<did>_<rkey>``; a conversation is the thread under its root's
``getPostThread`` (every reply, at any level, in one answer), keyed by the root.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator

import orjson
import scrapy
from scrapy.crawler import Crawler
from scrapy.http import Response

from tweetform.api import bluesky
from tweetform.api.endpoints import BLUESKY, ENDPOINTS, V2_TWEET_PARAMS, V2_USER_FIELDS
from tweetform.export.files import bucket_files, iter_lines
from tweetform.items import PROVENANCE
from tweetform.job import ArgumentError, JobArgs
from tweetform.spiders.base import META_CTX, ApiSpider, UserSeededSpider, shrink_page
from tweetform.spiders.search import query_key, search_endpoint, time_params
from tweetform.spiders.timeline import SinceIdSpider

#: user objects with the fields a users look-up asks for (no expansions: they would be billed as Post reads)
USER_LIST_PARAMS = {"user.fields": V2_USER_FIELDS}
#: list objects as twarc2 asks for them, with the owner's id
LIST_FIELDS = "created_at,description,follower_count,id,member_count,name,owner_id,private"
LIST_PARAMS = {"list.fields": LIST_FIELDS}
SEED_TWEET_FIELDS = "author_id,conversation_id,created_at,public_metrics"
BLUESKY_BATCH = 25  # getPosts' most URIs a request
#: getPostThread: every reply under the post (the lexicon's deepest), none of its parents
THREAD_PARAMS = {"depth": 1000, "parentHeight": 0}
logger = logging.getLogger(__name__)


class PagedSpider(ApiSpider):
    """Seeds → one list each, paged to its end; subclasses set the class attributes."""

    endpoint: ClassVar[str] = ""  # the endpoint key of the list
    params: ClassVar[dict[str, str]] = {}  # fields and expansions asked for
    limit: ClassVar[str | None] = None  # "max_tweets" or "max_users": the most objects taken per seed
    bucket_name: ClassVar[str] = ""
    bluesky_endpoint: ClassVar[str] = ""  # api=bluesky: the XRPC method of the list ("": X's API only)
    #: arguments that mean something on X's endpoints only (refused with api=bluesky)
    x_only: ClassVar[frozenset[str]] = frozenset({"conversation_id", "start_time", "end_time"})

    @classmethod
    def default_bucket(cls, raw: dict[str, Any]) -> str:
        return cls.bucket_name

    @classmethod
    def parse_arguments(cls, raw: dict[str, Any], default_api: str = "2") -> JobArgs:
        """v2 (or Bluesky, where the spider has a method there): an explicit ``api=1.1`` is refused; a
        v1.1 default (``TWEETFORM_API_VERSION``) does not apply, a ``bluesky`` one does."""
        api = str(raw.get("api") or "").strip().lstrip("v") or (BLUESKY if default_api == BLUESKY else "2")
        if api == BLUESKY and cls.bluesky_endpoint:
            given = sorted(set(raw) & cls.x_only)
            if given:
                raise ArgumentError(f"{given[0]} works with X's API only, not with api=bluesky")
            return super().parse_arguments(raw, BLUESKY)
        if api != "2":
            also = " or bluesky" if cls.bluesky_endpoint else ""
            raise ArgumentError(f"{cls.name} works with api=2{also} only (the endpoint has no {'v1.1' if api == '1.1' else api} form)")
        return super().parse_arguments(raw, "2")

    @classmethod
    def endpoints_for(cls, job: JobArgs) -> list[str]:
        """The endpoints a job calls (``scrapy crawl`` checks a credential may call each)."""
        return [cls.endpoint]

    @classmethod
    def list_endpoint(cls, job: JobArgs) -> str:
        """The endpoint of the lists the bucket's keys hold (what ``skip_known`` looks for)."""
        return cls.endpoints_for(job)[0]

    @classmethod
    def resolve_skip_known(cls, job: JobArgs, output_dir: str | Path) -> int:
        """``skip_known=true``: leave out the seeds whose whole list an earlier job already wrote to the
        bucket (its last page, without ``next_token``); how many were left out. Run by the process that
        starts the job (``scrapy crawl``, ``scrapy push``), so workers need no copy of the data."""
        if not job.skip_known:
            return 0
        known = complete_keys(output_dir, job.bucket, cls.list_endpoint(job), exclude_job=job.job)
        before = len(job.tweet_ids) + len(job.user_ids) + len(job.list_ids) + len(job.conversation_ids) + len(job.all_queries)
        if cls.seeds == "tweets" and cls.name != "conversation":
            job.tweet_ids = [t for t in job.tweet_ids if str(t) not in known]
        job.user_ids = [u for u in job.user_ids if str(u) not in known]
        job.list_ids = [i for i in job.list_ids if str(i) not in known]
        job.conversation_ids = [c for c in job.conversation_ids if str(c) not in known]
        if job.query and query_key(job.query) in known:
            job.query = None
        job.queries = [q for q in job.queries if query_key(q) not in known]
        return before - (len(job.tweet_ids) + len(job.user_ids) + len(job.list_ids) + len(job.conversation_ids) + len(job.all_queries))

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> "PagedSpider":
        spider = super().from_crawler(crawler, *args, **kwargs)
        job = spider.given_job
        if job is not None and job.skip_known:  # this process starts the job (not a job message from Redis)
            skipped = cls.resolve_skip_known(job, crawler.settings.get("TWEETFORM_OUTPUT_DIR") or "data")
            if skipped:
                logger.info("job %s: skip_known: %d seed(s) whose lists are already in bucket %s are left out (not paid again)",
                            job.job, skipped, job.bucket)
        return spider

    def limit_of(self, job: JobArgs) -> int | None:
        return getattr(job, self.limit) if self.limit else None

    def list_request(self, job: JobArgs, seed: int, *, endpoint: str | None = None, params: dict[str, Any] | None = None,
                     key: str | None = None, source: int | None = None) -> scrapy.Request:
        """The first page of one seed's list (the largest page the endpoint gives, or what ``max_*`` leaves)."""
        ep = ENDPOINTS[endpoint or self.endpoint]
        query: dict[str, Any] = {"limit" if ep.version == BLUESKY else "max_results": ep.pages[1]} if ep.pages[1] else {}
        query.update(self.params if params is None else params)
        limit = self.limit_of(job)
        if limit is not None:
            query = shrink_page(ep, query, limit)
        path_id = seed if "{id}" in ep.path else None
        return self.api_request(job, ep, query, key=key or str(seed), path_id=path_id, source=source,
                                extra={"seen": 0, "target": str(seed)})

    def on_page(self, response: Response, body: Any) -> Iterator[Any]:
        yield from self.follow(response, body, self.limit_of(self.job_of(response)))

    # --- api=bluesky ------------------------------------------------------------------

    def post_lookups(self, job: JobArgs, uris: list[str]) -> Iterator[scrapy.Request]:
        """The seed posts by ``getPosts`` (25 a request), written under the job's key (stage ``seeds``)."""
        for i in range(0, len(uris), BLUESKY_BATCH):
            batch = uris[i : i + BLUESKY_BATCH]
            yield self.api_request(job, "app.bsky.feed.getPosts", {"uris": batch}, key=job.job,
                                   extra={"target": " ".join(batch), "stage": "seeds"})

    def missing_seeds(self, response: Response, body: Any) -> Iterator[Any]:
        """An errors record for each seed a ``getPosts`` page left out (deleted, or its author gone)."""
        for uri in bluesky.missing_uris(body, response.meta[META_CTX]["target"].split(" ")):
            yield self.error_item(response, "not_found_or_deleted", uri, None, None)

    def found_posts(self, body: Any) -> list[str]:
        """The URIs of a ``getPosts`` page's posts (checked: each becomes an output key or a claim)."""
        uris = [p.get("uri") for p in bluesky.listed(body.get("posts")) if isinstance(p, dict)]
        good = [u for u in dict.fromkeys(uris) if bluesky.is_post_uri(u)]
        if len(good) < len(uris):
            self.crawler.stats.inc_value("tweetform/bluesky/malformed_uris", len(uris) - len(good))
        return good

    def thread_gaps(self, response: Response, body: Any) -> Iterator[Any]:
        """An errors record for each ``notFoundPost``/``blockedPost`` in a ``getPostThread`` answer."""
        for node in bluesky.thread_below(body.get("thread") if isinstance(body, dict) else None)[1]:
            reason = "blocked" if node.get("blocked") else "not_found"
            yield self.error_item(response, reason, str(node.get("uri") or response.meta[META_CTX]["target"]), None, node)


def complete_keys(output_dir: str | Path, bucket: str, endpoint: str, exclude_job: str | None = None) -> set[str]:
    """Keys of ``<output>/<bucket>/`` holding the last page of an ``endpoint`` list (files and archives)."""
    keys: set[str] = set()
    for path in bucket_files(Path(output_dir), bucket):
        for _, line in iter_lines(path):
            try:
                page = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            prov = page.get(PROVENANCE) if isinstance(page, dict) else None
            if (not isinstance(prov, dict) or prov.get("endpoint") != endpoint or prov.get("bucket") == "errors"
                    or (exclude_job and prov.get("job") == exclude_job)):
                continue
            if not (page.get("meta") or {}).get("next_token"):
                keys.add(str(prov.get("key")))
    return keys


class TweetListSpider(PagedSpider):
    """A list per tweet id (quotes, retweeted_by, liking_users)."""

    seeds = "tweets"
    #: look the seed tweets up too (100 a request, no expansions: a Post read each), so the bucket
    #: says whose tweet was retweeted or liked (``scrapy export graph``: edges user → author)
    look_up_seeds: ClassVar[bool] = False

    @classmethod
    def endpoints_for(cls, job: JobArgs) -> list[str]:
        if job.api == BLUESKY:
            return [cls.bluesky_endpoint, "app.bsky.feed.getPosts"]
        return [cls.endpoint] + (["/2/tweets"] if cls.look_up_seeds else [])

    def first_requests(self, job: JobArgs) -> Iterable[scrapy.Request]:
        if job.api == BLUESKY:  # the seeds looked up first: a list per post found, an errors record per one missing
            yield from self.post_lookups(job, list(dict.fromkeys(job.uris)))
            return
        seeds = list(dict.fromkeys(job.tweet_ids))
        if self.look_up_seeds:
            for i in range(0, len(seeds), 100):
                target = ",".join(map(str, seeds[i : i + 100]))
                yield self.api_request(job, "/2/tweets", {"ids": target, "tweet.fields": SEED_TWEET_FIELDS}, key=job.job,
                                       extra={"target": target, "stage": "seeds"})
        for tid in seeds:
            yield self.list_request(job, tid)

    def on_page(self, response: Response, body: Any) -> Iterator[Any]:
        if response.meta[META_CTX].get("stage") == "seeds":  # written as it is: the seeds' authors
            job = self.job_of(response)
            if job.api == BLUESKY:
                yield from self.missing_seeds(response, body)
                for uri in self.found_posts(body):
                    yield self.list_request(job, uri, endpoint=self.bluesky_endpoint, params={"uri": uri},  # type: ignore[arg-type]
                                            key=bluesky.post_key(uri))
            return
        yield from super().on_page(response, body)


class UserListSpider(PagedSpider, UserSeededSpider):
    """A list per user (liked_tweets, mentions); screen names are resolved first."""

    def seed_user(self, job: JobArgs, uid: int) -> Iterable[scrapy.Request]:
        yield self.list_request(job, uid, source=uid)


class QuotesSpider(TweetListSpider):
    name = "quotes"
    endpoint = "/2/tweets/:id/quote_tweets"
    bluesky_endpoint = "app.bsky.feed.getQuotes"
    params = V2_TWEET_PARAMS
    limit = "max_tweets"
    bucket_name = "quotes"
    arguments = frozenset({"max_tweets", "skip_known"})


class RetweetedBySpider(TweetListSpider):
    look_up_seeds = True
    name = "retweeted_by"
    endpoint = "/2/tweets/:id/retweeted_by"
    bluesky_endpoint = "app.bsky.feed.getRepostedBy"
    params = USER_LIST_PARAMS
    limit = "max_users"
    bucket_name = "retweeted_by"
    arguments = frozenset({"max_users", "skip_known"})


class LikingUsersSpider(TweetListSpider):
    look_up_seeds = True
    name = "liking_users"
    endpoint = "/2/tweets/:id/liking_users"
    bluesky_endpoint = "app.bsky.feed.getLikes"
    params = USER_LIST_PARAMS
    limit = "max_users"
    bucket_name = "liking_users"
    arguments = frozenset({"max_users", "skip_known"})


class LikedTweetsSpider(UserListSpider):
    name = "liked_tweets"
    endpoint = "/2/users/:id/liked_tweets"
    params = V2_TWEET_PARAMS
    limit = "max_tweets"
    bucket_name = "liked_tweets"
    arguments = frozenset({"max_tweets", "skip_known"})


class MentionsSpider(SinceIdSpider, UserListSpider):
    """A user's mentions, newest first (the API reaches the newest 800); ``since_id=auto`` goes on after the last run."""

    name = "mentions"
    endpoint = "/2/users/:id/mentions"
    params = V2_TWEET_PARAMS
    limit = "max_tweets"
    bucket_name = "mentions"
    arguments = frozenset({"max_tweets", "since_id", "since_ids", "start_time", "end_time", "skip_known"})

    def seed_user(self, job: JobArgs, uid: int) -> Iterable[scrapy.Request]:
        since_id = self.since_for(job, uid)
        params = {**self.params, **time_params(job), **({"since_id": since_id} if since_id else {})}
        yield self.list_request(job, uid, params=params, source=uid)


#: relation= of the lists spider -> (endpoint, fields, the max_* argument that stops it)
LIST_RELATIONS: dict[str, tuple[str, dict[str, str], str | None]] = {
    "lookup": ("/2/lists/:id", LIST_PARAMS, None),
    "members": ("/2/lists/:id/members", USER_LIST_PARAMS, "max_users"),
    "followers": ("/2/lists/:id/followers", USER_LIST_PARAMS, "max_users"),
    "tweets": ("/2/lists/:id/tweets", V2_TWEET_PARAMS, "max_tweets"),
}
USER_RELATIONS: dict[str, tuple[str, dict[str, str], str | None]] = {
    "memberships": ("/2/users/:id/list_memberships", LIST_PARAMS, None),
    "owned": ("/2/users/:id/owned_lists", LIST_PARAMS, None),
    "followed": ("/2/users/:id/followed_lists", LIST_PARAMS, None),
}
RELATIONS = {**LIST_RELATIONS, **USER_RELATIONS}


class ListsSpider(UserListSpider):
    """Lists: a list's object, members, followers or tweets (seeds ``list_id``), or a user's
    memberships, owned or followed lists (seeds ``user_id``/``screen_name``), by ``relation=``."""

    name = "lists"
    bucket_name = "lists"
    arguments = frozenset({"relation", "max_users", "max_tweets", "skip_known"})

    @classmethod
    def relation_of(cls, raw: dict[str, Any]) -> str:
        relation = str(raw.get("relation") or "").strip()
        if relation not in RELATIONS:
            raise ArgumentError(f"lists needs relation= one of {', '.join(LIST_RELATIONS)} (with list_id) "
                                f"or {', '.join(USER_RELATIONS)} (with user_id or screen_name), not {relation or 'nothing'!r}")
        return relation

    @classmethod
    def seeds_of(cls, raw: dict[str, Any]) -> str:
        return "lists" if cls.relation_of(raw) in LIST_RELATIONS else "users"

    @classmethod
    def parse_arguments(cls, raw: dict[str, Any], default_api: str = "2") -> JobArgs:
        job = super().parse_arguments(raw, default_api)
        job.relation = cls.relation_of(raw)
        return job

    @classmethod
    def endpoints_for(cls, job: JobArgs) -> list[str]:
        return [RELATIONS[job.relation or ""][0]]

    def limit_of(self, job: JobArgs) -> int | None:
        limit = RELATIONS[job.relation or ""][2]
        return getattr(job, limit) if limit else None

    def first_requests(self, job: JobArgs) -> Iterable[scrapy.Request]:
        if job.relation in LIST_RELATIONS:
            endpoint, params, _ = LIST_RELATIONS[job.relation]
            for lid in dict.fromkeys(job.list_ids):
                yield self.list_request(job, lid, endpoint=endpoint, params=params)
        else:
            yield from super().first_requests(job)

    def seed_user(self, job: JobArgs, uid: int) -> Iterable[scrapy.Request]:
        endpoint, params, _ = USER_RELATIONS[job.relation or ""]
        yield self.list_request(job, uid, endpoint=endpoint, params=params, source=uid)


class CountsSpider(PagedSpider):
    """How many posts match a query, per minute, hour or day (``/2/tweets/counts/recent``, ``/all``):
    a few cents a query, to size a search before paying for its posts. Keyed like ``search``."""

    name = "counts"
    seeds = "query"
    bucket_name = "counts"
    arguments = frozenset({"granularity", "archive", "start_time", "end_time", "skip_known"})

    @classmethod
    def endpoints_for(cls, job: JobArgs) -> list[str]:
        return ["/2/tweets/counts/all" if job.archive else "/2/tweets/counts/recent"]

    def first_requests(self, job: JobArgs) -> Iterable[scrapy.Request]:
        endpoint = self.endpoints_for(job)[0]
        for query in dict.fromkeys(job.all_queries):
            params = {"query": query, "granularity": job.granularity or "hour", **time_params(job)}
            yield self.api_request(job, endpoint, params, key=query_key(query), extra={"seen": 0, "target": query})

    def on_page(self, response: Response, body: Any) -> Iterator[Any]:
        yield from self.follow(response, body, None)


class ConversationSpider(PagedSpider):
    """Reply threads: each seed tweet's ``conversation_id`` (``/2/tweets``, 100 a request; given with
    ``conversation_id=``, no look-up), then the thread by search ``conversation_id:ID`` (recent, or
    full archive with ``archive=true``) and its root, both under the conversation's key."""

    name = "conversation"
    seeds = "tweets"
    bucket_name = "conversations"
    limit = "max_tweets"
    arguments = frozenset({"conversation_id", "archive", "max_tweets", "start_time", "end_time", "skip_known"})
    bluesky_endpoint = "app.bsky.feed.getPostThread"
    x_only = PagedSpider.x_only | {"max_tweets"}  # a Bluesky thread comes whole, in one answer

    @classmethod
    def endpoints_for(cls, job: JobArgs) -> list[str]:
        if job.api == BLUESKY:
            return ["app.bsky.feed.getPosts", cls.bluesky_endpoint]
        return (["/2/tweets"] if job.tweet_ids else []) + [search_endpoint(job)]

    @classmethod
    def list_endpoint(cls, job: JobArgs) -> str:
        return search_endpoint(job)  # a seed tweet's thread is known by its conversation id only after the look-up

    def first_requests(self, job: JobArgs) -> Iterable[scrapy.Request]:
        if job.api == BLUESKY:  # the seeds' thread roots first
            yield from self.post_lookups(job, list(dict.fromkeys(job.uris)))
            return
        for cid in dict.fromkeys(job.conversation_ids):
            yield from self.thread_requests(job, cid)
        tweet_ids = list(dict.fromkeys(job.tweet_ids))
        for i in range(0, len(tweet_ids), 100):
            target = ",".join(map(str, tweet_ids[i : i + 100]))
            yield self.api_request(job, "/2/tweets", {"ids": target, **V2_TWEET_PARAMS}, key=job.job,
                                   extra={"target": target, "stage": "seeds"})

    def thread_requests(self, job: JobArgs, cid: int) -> Iterator[scrapy.Request]:
        """The root (search leaves it out) and the first page of the thread's search."""
        yield self.api_request(job, "/2/tweets", {"ids": str(cid), **V2_TWEET_PARAMS}, key=str(cid),
                               extra={"target": str(cid), "stage": "root"})
        params = {"query": f"conversation_id:{cid}", **V2_TWEET_PARAMS, **time_params(job)}
        yield self.list_request(job, cid, endpoint=search_endpoint(job), params=params)

    def on_page(self, response: Response, body: Any) -> Iterator[Any]:
        stage = response.meta[META_CTX].get("stage")
        if stage == "root":
            return
        job = self.job_of(response)
        if job.api == BLUESKY:
            yield from self.on_bluesky_page(job, response, body)
            return
        if stage == "seeds":
            found = [t.get("conversation_id") for t in body.get("data") or [] if isinstance(t, dict)]
            for cid in dict.fromkeys(c for c in found if c and str(c).isdigit()):
                yield from self.thread_requests(job, int(cid))
            return
        yield from super().on_page(response, body)

    def on_bluesky_page(self, job: JobArgs, response: Response, body: Any) -> Iterator[Any]:
        """Seeds: each one's thread root, fetched whole by ``getPostThread`` (once: the dupe filter) under
        the root's key; a thread: its missing and blocked replies recorded."""
        if response.meta[META_CTX].get("stage") != "seeds":
            yield from self.thread_gaps(response, body)
            return
        yield from self.missing_seeds(response, body)
        roots = [bluesky.root_of(p) for p in bluesky.listed(body.get("posts")) if isinstance(p, dict)]
        for root in dict.fromkeys(roots):
            if not bluesky.is_post_uri(root):  # it would become a file name
                self.crawler.stats.inc_value("tweetform/bluesky/malformed_uris")
                continue
            yield self.api_request(job, self.bluesky_endpoint, {"uri": root, **THREAD_PARAMS}, key=bluesky.post_key(root),
                                   extra={"target": root})
