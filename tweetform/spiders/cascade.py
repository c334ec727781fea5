"""``cascade``: a post's reactions to depth N — replies, quotes, retweeters (and likers), then theirs.

    scrapy crawl cascade -a tweet_id=ID[,ID…]|file=… -a depth=N -a include=replies,quotes,retweets[,likes][,retweet_times]
                         [-a max_tweets=N] [-a archive=true] [-a budget=USD]

The seeds are looked up (``/2/tweets``, 100 a request) for their conversation ids. Expanding a
post fetches, on the rails of :class:`~tweetform.spiders.paged.PagedSpider` (one paged list per
post, to the end marker): its conversation by one search ``conversation_id:ID`` when the post is
the root of its thread (a quote, an original), a seed, or a quote that also replies (its thread is
another one) — every reply at any level, so a thread is searched once and never once per reply;
each conversation is claimed once per job (``JobArgs.conversations_job``) —, its quotes, its
retweeters, its likers. Replies and
quotes found at level ``L`` are posts of depth ``L``; while ``L < depth`` they are expanded at
level ``L + 1`` (a reply's own thread is the one already searched: only its quotes, retweeters
and likers are fetched).

Each post is expanded once per job: it is claimed in the job store (as ``friends`` claims users),
and the crawl goes level by level with the store's network levels (:mod:`tweetform.state.base`):
the next level is assembled, in breadth-first order, when every request of the current one has
finished, so ``max_tweets`` expands exactly the first N posts in breadth-first order (seeds first,
then for each post in order its replies, then its quotes). Distributed workers, ``JOBDIR`` resume,
budgets, provenance and the errors bucket come with the rails. Every page goes to the bucket
``cascades`` under the job's key, with ``post`` (whose list it is) and ``list`` in its provenance;
``scrapy export cascade`` makes the tree. ``include=retweet_times`` (X) also reads each retweeter's
timeline since the post, back to its retweet (:data:`RETWEET_TIMES`): the one place the API gives
a retweet's time.

With ``api=bluesky`` (seeds: ``at://`` post URIs, looked up with ``getPosts``) the same crawl runs
on the AppView: a post's replies are its thread below it, every level, from one ``getPostThread``
(fetched for the seeds and for posts that are not replies, as X's conversation search is; a
reply's thread is part of the one it was found in), its quotes from ``getQuotes``, its reposts
from ``getRepostedBy``, its likes from ``getLikes``; posts are claimed by :func:`~tweetform.api.bluesky.uri_key`.
For a seed that is itself a reply, that is the replies under it, not its whole conversation.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Iterable, Iterator

import scrapy
from scrapy.http import Response

from tweetform.api import bluesky
from tweetform.api.endpoints import BLUESKY, ENDPOINTS, V2_TWEET_PARAMS
from tweetform.job import ArgumentError, JobArgs
from tweetform.spiders.base import META_CTX
from tweetform.spiders.paged import THREAD_PARAMS, USER_LIST_PARAMS, PagedSpider
from tweetform.spiders.search import search_endpoint, time_params

INCLUDES = ("replies", "quotes", "retweets", "likes", "retweet_times")
DEFAULT_INCLUDE = "replies,quotes,retweets"
#: include -> the list's endpoint (replies: the search endpoint of the job) and the fields asked for
LISTS: dict[str, tuple[str | None, dict[str, str]]] = {
    "replies": (None, V2_TWEET_PARAMS),
    "quotes": ("/2/tweets/:id/quote_tweets", V2_TWEET_PARAMS),
    "retweets": ("/2/tweets/:id/retweeted_by", USER_LIST_PARAMS),
    "likes": ("/2/tweets/:id/liking_users", USER_LIST_PARAMS),
}
#: include=retweet_times (X): each retweeter's timeline since the post, back to its retweet (retweeted_by gives
#: users, no time; search leaves out retweets since May 2026), a Post read per tweet returned: retweets and
#: originals only (exclude=replies), and no expansions, so nothing else is billed
RETWEET_TIMES = ("/2/users/:id/tweets", {"exclude": "replies", "tweet.fields": "author_id,created_at,referenced_tweets"})
#: a post's found posts are ordered replies first, then quotes (page numbers offset by list)
LIST_ORDER = {"replies": 0, "quotes": 1_000_000}
#: api=bluesky: include -> the list's XRPC method (replies: the thread under the post, one answer)
BLUESKY_LISTS = {"replies": "app.bsky.feed.getPostThread", "quotes": "app.bsky.feed.getQuotes",
                 "retweets": "app.bsky.feed.getRepostedBy", "likes": "app.bsky.feed.getLikes"}
THREAD_MARK = "^"  # a found Bluesky post that is not a reply: its own thread is fetched when it is expanded


def parse_include(raw: Any) -> list[str]:
    """``include=`` → the lists followed, in :data:`INCLUDES` order; one line naming a bad one."""
    given = [p.strip().lower() for p in str(raw if raw is not None else DEFAULT_INCLUDE).split(",") if p.strip()]
    bad = [p for p in given if p not in INCLUDES]
    if bad or not given:
        raise ArgumentError(f"include takes {', '.join(INCLUDES)} (comma-separated), not {bad[0] if bad else raw!r}")
    if "retweet_times" in given and "retweets" not in given:
        raise ArgumentError("include=retweet_times times the retweets: include retweets too")
    return [i for i in INCLUDES if i in given]


Found = int | list[int]


def found_id(tweet: dict[str, Any], found_in: str) -> Found:
    """A found post as a level's entry: negative when it is the root of its own thread (its conversation
    is searched when it is expanded), positive for a reply found in its thread's search (searched
    already), ``[id, conversation]`` for a quote that also replies: it belongs to another thread,
    searched when it is expanded (unless the job searched it already)."""
    tid = int(tweet["id"])
    conversation = int(tweet.get("conversation_id") or tid)
    if conversation == tid:
        return -tid
    return tid if found_in == "replies" else [tid, conversation]


def post_of(entry: Found) -> tuple[int, int | None]:
    """A level's entry as ``(post, conversation to search when it is expanded, or None)``."""
    if isinstance(entry, list):
        return int(entry[0]), int(entry[1])
    return abs(entry), (abs(entry) if entry < 0 else None)


def found_uris(include: str, body: Any) -> list[str]:
    """The posts a Bluesky list page found (every reply of a thread, or the quotes), as a level's entries:
    the URI, marked with :data:`THREAD_MARK` when the post is not a reply; a malformed URI is left out."""
    posts = bluesky.thread_below(body.get("thread"))[0] if include == "replies" else bluesky.listed(body.get("posts"))
    return [("" if bluesky.is_reply(p) else THREAD_MARK) + p["uri"] for p in posts
            if isinstance(p, dict) and bluesky.is_post_uri(p.get("uri"))]


class CascadeSpider(PagedSpider):
    name = "cascade"
    seeds = "tweets"
    bucket_name = "cascades"
    arguments = frozenset({"depth", "include", "max_tweets", "archive", "start_time", "end_time"})
    bluesky_endpoint = "app.bsky.feed.getPostThread"

    @classmethod
    def parse_arguments(cls, raw: dict[str, Any], default_api: str = "2") -> JobArgs:
        job = super().parse_arguments(raw, default_api)
        job.include = ",".join(parse_include(raw.get("include")))
        if job.api == BLUESKY and "retweet_times" in job.include:
            raise ArgumentError("include=retweet_times is for X (a Bluesky repost list has no time either, and no timeline to find it in)")
        return job

    @classmethod
    def includes(cls, job: JobArgs) -> list[str]:
        return (job.include or DEFAULT_INCLUDE).split(",")

    @classmethod
    def endpoints_for(cls, job: JobArgs) -> list[str]:
        if job.api == BLUESKY:
            return ["app.bsky.feed.getPosts"] + [BLUESKY_LISTS[i] for i in cls.includes(job)]
        return ["/2/tweets"] + [(RETWEET_TIMES[0] if i == "retweet_times" else LISTS[i][0]) or search_endpoint(job)
                                for i in cls.includes(job)]

    def first_requests(self, job: JobArgs) -> Iterable[scrapy.Request]:
        if job.api == BLUESKY:
            lookups = list(self.post_lookups(job, list(dict.fromkeys(job.uris))))
            self.store.requests_opened(job, 1, [r.url for r in lookups])
            return lookups
        seeds = list(dict.fromkeys(job.tweet_ids))
        lookups = [self.api_request(job, "/2/tweets", {"ids": ",".join(map(str, seeds[i : i + 100])), **V2_TWEET_PARAMS},
                                    key=job.job, extra={"target": ",".join(map(str, seeds[i : i + 100])), "stage": "seeds"})
                   for i in range(0, len(seeds), 100)]
        self.store.requests_opened(job, 1, [r.url for r in lookups])  # level 1 ends after the seeds' lists
        return lookups

    def provenance(self, response: Response, key: str, bucket: str) -> dict[str, Any]:
        prov = super().provenance(response, key, bucket)
        ctx = response.meta[META_CTX]
        if ctx.get("list"):
            prov["post"], prov["list"] = ctx["target"], ctx["list"]
        return prov

    # --- expansion ----------------------------------------------------------------------

    def expand(self, job: JobArgs, posts: list[tuple[Any, Any]], level: int, claimer: str) -> Iterator[scrapy.Request]:
        """Claim the posts ``(id, conversation to search or None)`` (Bluesky: ``(URI, whether its thread is
        fetched)``) at ``level`` and fetch their lists."""
        thread: dict[Any, Any] = {}
        for tid, cid in posts:
            thread.setdefault(tid, cid)  # a post found twice keeps its first (breadth-first) finding
        if job.api == BLUESKY:
            by_key = {bluesky.uri_key(uri): uri for uri in thread}
            claimed = [by_key[k] for k in self.store.claim_users(job, list(by_key), level, claimer)]
            searches = {uri: thread[uri] for uri in claimed}
        else:
            claimed = self.store.claim_users(job, list(thread), level, claimer)
            searches = self.conversations(job, claimed, thread, level, claimer)
        requests = [r for tid in claimed for r in self.list_requests(job, tid, searches[tid], level)]
        self.store.requests_opened(job, level, [r.url for r in requests])
        self.crawler.stats.inc_value("tweetform/posts/expanded", len(claimed))
        yield from requests

    def conversations(self, job: JobArgs, claimed: list[int], thread: dict[int, int | None], level: int,
                      claimer: str) -> dict[int, int | None]:
        """Claimed post -> the conversation it searches (None: none). Each conversation is searched once per
        job: claimed apart from the posts (``JobArgs.conversations_job``, not counted in max_tweets) by the
        same claimer, and searched by the first post of this level that has it."""
        wanted = list(dict.fromkeys(c for c in (thread[t] for t in claimed) if c is not None))
        store_job = replace(job, job=job.conversations_job, spider="conversation", max_tweets=None, max_users=None)
        fresh = set(self.store.claim_users(store_job, wanted, level, claimer)) if wanted else set()
        searches: dict[int, int | None] = {}
        for tid in claimed:
            cid = thread[tid]
            searches[tid] = cid if cid in fresh else None
            fresh.discard(cid)  # type: ignore[arg-type]
        return searches

    def list_requests(self, job: JobArgs, tid: Any, conversation: Any, level: int) -> Iterator[scrapy.Request]:
        for include in self.includes(job):
            if job.api == BLUESKY:
                if include == "replies" and not conversation:
                    continue
                params = {"uri": tid, **(THREAD_PARAMS if include == "replies" else {"limit": 100})}
                yield self.api_request(job, BLUESKY_LISTS[include], params, key=job.job, depth=level, priority=-level,
                                       extra={"target": tid, "list": include, "seen": 0})
                continue
            if include == "retweet_times":
                continue  # asked for from each retweeters page (retweet_times)
            endpoint, params = LISTS[include]
            if include == "replies":
                if conversation is None:
                    continue
                endpoint = search_endpoint(job)
                params = {"query": f"conversation_id:{conversation}", **params, **time_params(job)}
            ep = ENDPOINTS[endpoint or ""]
            query = {**({"max_results": ep.pages[1]} if ep.pages[1] else {}), **params}
            yield self.api_request(job, ep, query, key=job.job, path_id=tid if "{id}" in ep.path else None, depth=level,
                                   priority=-level, extra={"target": str(tid), "list": include, "seen": 0})

    def on_page(self, response: Response, body: Any) -> Iterator[Any]:
        job = self.job_of(response)
        ctx = response.meta[META_CTX]
        bsky = job.api == BLUESKY
        if ctx.get("stage") == "seeds":
            if bsky:  # every seed's thread below it is fetched
                yield from self.missing_seeds(response, body)
                found: list[tuple[Any, Any]] = [(uri, True) for uri in self.found_posts(body)]
            else:
                found = [(int(t["id"]), int(t.get("conversation_id") or t["id"])) for t in body.get("data") or [] if isinstance(t, dict)]
            yield from self.expand(job, found, 1, claimer="seed")
            yield from self.request_done(job, 1, response.request.url)
            return
        level = ctx["depth"]
        if ctx["list"] == "retweet_times":
            yield from self.retweet_time(job, response, body, level)
            return
        nxt = self.next_page(response, body)
        if nxt is not None:
            self.store.requests_opened(job, level, [nxt.url])
            yield nxt
        if bsky and ctx["list"] == "replies":
            yield from self.thread_gaps(response, body)
        if not bsky and ctx["list"] == "retweets" and "retweet_times" in self.includes(job):
            yield from self.retweet_times(job, ctx["target"], body, level)
        if level < job.depth and ctx["list"] in LIST_ORDER:
            if bsky:
                ids: list[Any] = found_uris(ctx["list"], body)
                source = bluesky.uri_key(ctx["target"])
            else:
                ids = [found_id(t, ctx["list"]) for t in body.get("data") or [] if isinstance(t, dict) and t.get("id")]
                source = int(ctx["target"])
            self.store.record_found(job, level, source, LIST_ORDER[ctx["list"]] + ctx.get("page_no", 0), ids)
        yield from self.request_done(job, level, response.request.url)

    def retweet_times(self, job: JobArgs, post: str, body: Any, level: int) -> Iterator[scrapy.Request]:
        """The first timeline page of each retweeter of ``post`` since it (newest first: the retweet is in it or after)."""
        endpoint, params = RETWEET_TIMES
        ep = ENDPOINTS[endpoint]
        requests = [self.api_request(job, ep, {"max_results": ep.pages[1], "since_id": post, **params}, key=job.job, path_id=u["id"],
                                     depth=level, priority=-level, extra={"target": post, "list": "retweet_times", "user": str(u["id"])})
                    for u in body.get("data") or [] if isinstance(u, dict) and u.get("id")]
        self.store.requests_opened(job, level, [r.url for r in requests])  # before this page is done
        yield from requests

    def retweet_time(self, job: JobArgs, response: Response, body: Any, level: int) -> Iterator[Any]:
        """A retweeter's timeline page: its next page until the retweet of the post is in one (or the end)."""
        post = response.meta[META_CTX]["target"]
        found = any(r.get("type") == "retweeted" and str(r.get("id")) == post
                    for t in body.get("data") or [] if isinstance(t, dict) for r in t.get("referenced_tweets") or [])
        nxt = None if found else self.next_page(response, body)
        if nxt is not None:
            self.store.requests_opened(job, level, [nxt.url])
            yield nxt
        yield from self.request_done(job, level, response.request.url)

    def on_account_error(self, response: Response, outcome: Any) -> Iterator[Any]:
        yield from self.request_done(self.job_of(response), response.meta[META_CTX]["depth"], response.request.url)

    def request_done(self, job: JobArgs, level: int, page: str) -> Iterator[scrapy.Request]:
        """When every request of a level has finished, expand the next level in breadth-first order."""
        next_level = self.store.request_done(job, level, page)
        if next_level is not None and level < job.depth:
            if job.api == BLUESKY:
                posts = [(u.lstrip(THREAD_MARK), u.startswith(THREAD_MARK)) for u in next_level]
            else:
                posts = [post_of(entry) for entry in next_level]
            yield from self.expand(job, posts, level + 1, claimer=f"level:{level + 1}")
