"""``scrapy plan`` for the collection spiders (issue 17) and v2 search: what the API says the job
will return, asked before any post is paid for.

* ``search`` (v2) and ``conversation``: the counts endpoints (``/2/tweets/counts/recent``,
  ``/all``: a few cents a query) give how many posts match — the query, or
  ``conversation_id:ID`` for each thread — over the same window the crawl searches.
  ``conversation`` looks its seed tweets up first (``/2/tweets``, their ``conversation_id``).
* ``quotes``, ``retweeted_by``, ``liking_users``: the seed tweets' ``public_metrics``
  (``quote_count``, ``retweet_count``, ``like_count``) from one ``/2/tweets`` look-up per 100.
* ``liked_tweets``, ``lists relation=memberships``, ``timeline archive=true``: the seed users'
  ``like_count``, ``listed_count``, ``tweet_count`` (the users look-up plan already makes).
* ``lists`` of list ids: ``/2/lists/:id`` (``member_count``, ``follower_count``).
* ``cascade`` to depth N: level 1 from the seeds' ``public_metrics`` and a count of each seed's
  thread, the levels below from a sample of level 1 (:func:`_cascade`), with a range.
* ``counts``: exact (one request per query and 31 days).
* ``mentions``, a list's tweets, owned and followed lists: unknown before crawling; the
  plan counts ``max_tweets`` (mentions: the API's 800) or one page, and says so.

The dollars are the posts, users, likes and lists the job's ``data`` returns. What v2 expansions
add to ``includes`` (authors, mentioned users, referenced tweets) often costs as much again: for
``search`` and ``conversation`` the plan reads one page of ``sample`` posts (``scrapy plan
--sample``, default 100; a crawl the same UTC day is not billed for them again) and extrapolates
(:func:`includes_model`): distinct users grow like ``N^β`` (Heaps' law, β fitted on the sample's
own growth), referenced tweets in proportion. Without a sample, and for the other spiders, the
most includes may add is shown apart, as an upper bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

from tweetform import exitcodes
from tweetform.api import pricing
from tweetform.api.endpoints import ENDPOINTS, V2_TWEET_PARAMS
from tweetform.job import JobArgs


class PlanError(Exception):
    """Counts could not be looked up; the message is the one line shown, ``code`` the exit status
    (tweetform/exitcodes.py: bad input unless the API said why)."""

    def __init__(self, message: str, code: int = exitcodes.BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code


MENTIONS_CAP = 800  # the API reaches a user's newest 800 mentions
COUNTS_SPAN_DAYS = 31  # one counts answer covers at most 31 days


@dataclass
class Volume:
    """What a job will fetch: requests per endpoint and resources per billing kind."""

    requests: dict[str, int] = field(default_factory=dict)
    resources: dict[str, int] = field(default_factory=dict)
    tweets: int | None = None
    users: int = 0
    exact: bool = False
    notes: list[str] = field(default_factory=list)
    includes_usd: float = 0.0
    plan_requests: int = 0  # requests the plan itself made (counts, look-ups)
    sampled: bool = False  # includes estimated from a sample page (else only bounded)
    basis: str = ""  # what the figures rest on (else the plan says exact or estimated)
    usd_range: tuple[float, float] | None = None  # the low and high end of what it may cost (data)

    def add(self, endpoint: str, requests: int) -> None:
        self.requests[endpoint] = self.requests.get(endpoint, 0) + requests

    def bill(self, kind: str, n: int) -> None:
        self.resources[kind] = self.resources.get(kind, 0) + n


def pages(items: int, page: int) -> int:
    """Requests a list of ``items`` takes: full pages, then the empty or short last one (at least one)."""
    return max(1, math.ceil(items / page)) if items > 0 else 1


def counts_pages(job: JobArgs) -> int:
    """Counts answers per query: one per 31 days of the window (recent: 7 days; all without start_time: 30)."""
    if not (job.start_time and job.archive):
        return 1
    start = datetime.strptime(job.start_time, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    end = (datetime.strptime(job.end_time, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc) if job.end_time
           else datetime.now(timezone.utc))
    return max(1, math.ceil((end - start).total_seconds() / (COUNTS_SPAN_DAYS * 86400)))


def count_posts(client: Any, query: str, job: JobArgs) -> int:
    """How many posts match ``query`` in the job's window, from the counts endpoint (all its pages)."""
    endpoint = "/2/tweets/counts/all" if job.archive else "/2/tweets/counts/recent"
    params: dict[str, Any] = {"query": query, "granularity": "day"}
    params.update({k: v for k, v in (("start_time", job.start_time), ("end_time", job.end_time)) if v})
    total = 0
    while True:
        status, body = client.get(endpoint, params)
        if status != 200 or not isinstance(body, dict):
            raise PlanError(f"{endpoint} answered HTTP {status} for {query[:60]!r}")
        meta = body.get("meta") or {}
        total += int(meta.get("total_tweet_count", sum(int(b.get("tweet_count", 0)) for b in body.get("data") or [])))
        token = meta.get("next_token")
        if not token:
            return total
        params = {**params, "next_token": token}


def _fit_exponent(points: list[tuple[int, int]]) -> float:
    """Least-squares slope of log(distinct) over log(posts), kept within [0.3, 1]."""
    xs = [math.log(k) for k, n in points if n > 0]
    ys = [math.log(n) for _, n in points if n > 0]
    if len(xs) < 3:
        return 1.0
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return min(1.0, max(0.3, sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var)) if var else 1.0


def includes_model(page: dict[str, Any]) -> Callable[[int], tuple[float, float]]:
    """From one sample page: ``posts → (users, referenced tweets)`` its ``includes`` will hold.

    Users (authors, replied-to and mentioned accounts, referenced tweets' authors) are billed once
    a day however often they recur, so they grow slower than posts: ``U(N) = U(p)·(N/p)^β``, β the
    slope of the sample's own distinct users over its first 10, 20, … posts. Referenced tweets
    (not themselves among the posts) are counted in proportion."""
    tweets = [t for t in page.get("data") or [] if isinstance(t, dict)]
    included = {t.get("id"): t for t in (page.get("includes") or {}).get("tweets") or [] if isinstance(t, dict)}
    own = {t.get("id") for t in tweets}

    def users(ts: list[dict[str, Any]]) -> set[Any]:
        found: set[Any] = set()
        for t in ts:
            found.update((t.get("author_id"), t.get("in_reply_to_user_id")))
            found.update(m.get("id") for m in (t.get("entities") or {}).get("mentions") or [])
            found.update((included.get(r.get("id")) or {}).get("author_id") for r in t.get("referenced_tweets") or [])
        found.discard(None)
        return found

    p = len(tweets)
    if not p:
        return lambda n: (0.0, 0.0)
    u = len(users(tweets))
    beta = _fit_exponent([(k, len(users(tweets[:k]))) for k in range(10, p + 1, 10)])
    refs = len({r.get("id") for t in tweets for r in t.get("referenced_tweets") or [] if r.get("id") in included and r.get("id") not in own})

    def model(n: int) -> tuple[float, float]:
        return (u * (n / p) ** beta if n > p else u * n / p), refs * n / p
    return model


def _sample(client: Any, endpoint: str, query: str, job: JobArgs, size: int) -> Callable[[int], tuple[float, float]] | None:
    """The includes model of one page of ``size`` posts of a search (None: no sample)."""
    if size <= 0:
        return None
    params = {"query": query, "max_results": max(ENDPOINTS[endpoint].pages[0], min(size, ENDPOINTS[endpoint].pages[1])),
              **V2_TWEET_PARAMS, **{k: v for k, v in (("start_time", job.start_time), ("end_time", job.end_time)) if v}}
    status, body = client.get(endpoint, params)
    return includes_model(body) if status == 200 and isinstance(body, dict) else None


def _estimated_includes(volume: Volume, model: Callable[[int], tuple[float, float]], posts: int) -> None:
    users, refs = model(posts)
    volume.bill(pricing.USER, round(users))
    volume.bill(pricing.POST, round(refs))
    volume.sampled = True


def _includes(volume: Volume, endpoint: str, posts: int) -> None:
    """The most the expansions tweetform asks for may add to ``includes`` (an upper bound)."""
    from tweetform.cost.rule import unit_cost

    volume.includes_usd += posts * max(0.0, unit_cost(endpoint, V2_TWEET_PARAMS) - pricing.price(pricing.POST))


def _search(client: Any, job: JobArgs, volume: Volume, sample: int) -> None:
    from tweetform.spiders.search import search_endpoint

    endpoint = search_endpoint(job)
    page = ENDPOINTS[endpoint].pages[1]
    total = 0
    for query in dict.fromkeys(job.all_queries):
        text = query + (f" lang:{job.lang}" if job.lang else "")
        n = count_posts(client, text, job)
        n = min(n, job.max_tweets) if job.max_tweets else n
        volume.add(endpoint, pages(n, page))
        total += n
        model = _sample(client, endpoint, text, job, sample) if n else None
        if model is not None:
            _estimated_includes(volume, model, n)
        else:
            _includes(volume, endpoint, n)
    volume.tweets = total
    volume.bill(pricing.POST, total)


def _seed_tweets(client: Any, ids: list[int], fields: str) -> dict[int, dict[str, Any]]:
    """The seed tweets (``/2/tweets``, 100 a request); missing ones are left out."""
    found: dict[int, dict[str, Any]] = {}
    for i in range(0, len(ids), 100):
        status, body = client.get("/2/tweets", {"ids": ",".join(map(str, ids[i : i + 100])), "tweet.fields": fields})
        if status != 200:
            raise PlanError(f"tweets look-up answered HTTP {status}")
        for tweet in (body or {}).get("data") or []:
            found[int(tweet["id"])] = tweet
    return found


def _conversation(client: Any, job: JobArgs, volume: Volume, sample: int) -> None:
    from tweetform.spiders.search import search_endpoint

    seeds = list(dict.fromkeys(job.tweet_ids))
    cids = list(dict.fromkeys(job.conversation_ids))
    if seeds:
        tweets = _seed_tweets(client, seeds, "conversation_id")
        volume.add("/2/tweets", math.ceil(len(seeds) / 100))
        volume.bill(pricing.POST, len(tweets))
        cids += [c for c in dict.fromkeys(int(t["conversation_id"]) for t in tweets.values() if t.get("conversation_id"))
                 if c not in cids]
    endpoint = search_endpoint(job)
    total = 0
    model: Callable[[int], tuple[float, float]] | None = None
    sized: list[int] = []
    for cid in cids:
        n = count_posts(client, f"conversation_id:{cid}", job)
        n = min(n, job.max_tweets) if job.max_tweets else n
        volume.add(endpoint, pages(n, ENDPOINTS[endpoint].pages[1]))
        total += n
        sized.append(n)
        if model is None and n:  # one thread's page stands for all of them
            model = _sample(client, endpoint, f"conversation_id:{cid}", job, sample)
    roots = [c for c in cids if c not in seeds]  # a root among the seeds is billed once that day
    volume.add("/2/tweets", len(cids))
    volume.bill(pricing.POST, total + len(roots))
    volume.tweets = total + len(cids)
    if model is not None:
        for n in sized:
            _estimated_includes(volume, model, n + 1)  # the thread and its root
    else:
        _includes(volume, endpoint, total + len(cids))


#: spider -> (public_metrics count of the seed tweet, billing kind of each listed object)
TWEET_METRIC = {"quotes": ("quote_count", pricing.POST), "retweeted_by": ("retweet_count", pricing.USER),
                "liking_users": ("like_count", pricing.LIKE)}


def _tweet_lists(client: Any, job: JobArgs, volume: Volume, spidercls: Any) -> None:
    metric, kind = TWEET_METRIC[job.spider]
    seeds = list(dict.fromkeys(job.tweet_ids))
    tweets = _seed_tweets(client, seeds, "public_metrics")
    limit = getattr(job, spidercls.limit) if spidercls.limit else None
    page = ENDPOINTS[spidercls.endpoint].pages[1]
    total = 0
    for tid in seeds:
        n = int(((tweets.get(tid) or {}).get("public_metrics") or {}).get(metric, 0))
        n = min(n, limit) if limit else n
        volume.add(spidercls.endpoint, pages(n, page))
        total += n
    volume.bill(kind, total)
    if spidercls.look_up_seeds:
        volume.add("/2/tweets", math.ceil(len(seeds) / 100))
        volume.bill(pricing.POST, len(tweets))
    if kind == pricing.POST:
        volume.tweets = total
        _includes(volume, spidercls.endpoint, total)
    else:
        volume.users = total
    missing = len(seeds) - len(tweets)
    if missing:
        volume.notes.append(f"{missing} seed tweet(s) the look-up did not return (deleted or protected) count one request each")


#: cascade include -> (public_metrics count, endpoint, billing kind); replies: the job's search endpoint
CASCADE_LISTS = {"replies": ("reply_count", None, pricing.POST), "quotes": ("quote_count", "/2/tweets/:id/quote_tweets", pricing.POST),
                 "retweets": ("retweet_count", "/2/tweets/:id/retweeted_by", pricing.USER),
                 "likes": ("like_count", "/2/tweets/:id/liking_users", pricing.LIKE)}
CASCADE_FIELDS = "public_metrics,conversation_id"


@dataclass
class Reactions:
    """What an expanded post brings, on average (from a sample of level 1): posts of its thread (a root's
    replies), quotes, and per include the objects listed and the requests that list takes."""

    replies: float = 0.0  # a root's thread (a reply's thread is searched already)
    quotes_of_root: float = 0.0
    quotes_of_reply: float = 0.0
    listed: dict[str, float] = field(default_factory=dict)  # include -> objects per post (retweeters, likers)
    pages: dict[str, float] = field(default_factory=dict)  # include -> requests per post

    def scaled(self, factor: float) -> "Reactions":
        return Reactions(self.replies * factor, self.quotes_of_root * factor, self.quotes_of_reply * factor,
                         {k: v * factor for k, v in self.listed.items()}, dict(self.pages))


def _mean_spread(values: list[float]) -> tuple[float, float]:
    """The mean and two standard errors of it."""
    if not values:
        return 0.0, 0.0
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1)
    return mean, 2 * (var / len(values)) ** 0.5


def _cascade_sample(client: Any, job: JobArgs, seed: int, conversation: int, size: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Level 1's first pages, as the crawl fetches them (the seed's thread search and its quotes, with
    public_metrics and the crawl's expansions): ``(posts, pages)``."""
    from tweetform.spiders.search import search_endpoint, time_params

    posts: list[dict[str, Any]] = []
    pages: list[dict[str, Any]] = []
    asked = []
    if "replies" in (job.include or "replies"):
        endpoint = search_endpoint(job)
        asked.append((endpoint, {"query": f"conversation_id:{conversation}", **time_params(job)}, None))
    asked.append(("/2/tweets/:id/quote_tweets", {}, seed))
    for endpoint, params, path_id in asked:
        low, high = ENDPOINTS[endpoint].pages
        status, body = client.get(endpoint, {**params, "max_results": max(low, min(size, high)), **V2_TWEET_PARAMS}, path_id)
        if status != 200 or not isinstance(body, dict):
            raise PlanError(f"the sample of level 1 ({endpoint}) answered HTTP {status}: the estimate is not possible now",
                            exitcodes.UNREACHABLE if status >= 500 else exitcodes.ERROR)
        pages.append(body)
        posts += [t for t in body.get("data") or [] if isinstance(t, dict)]
    return posts, pages


def _reactions(posts: list[dict[str, Any]], includes: list[str]) -> tuple[Reactions, Reactions, Reactions]:
    """Per expanded post, from the sampled posts' public_metrics: the mean, and the mean less and plus two
    standard errors (the low and high ends of the range)."""
    def metric(t: dict[str, Any], name: str) -> float:
        return float((t.get("public_metrics") or {}).get(name, 0))

    roots = [t for t in posts if str(t.get("conversation_id") or t.get("id")) == str(t.get("id"))]
    replies = [t for t in posts if t not in roots]
    ends = []
    for side in (0, -1, 1):
        def m(ts: list[dict[str, Any]], name: str) -> float:
            mean, spread = _mean_spread([metric(t, name) for t in ts])
            return max(0.0, mean + side * spread)
        r = Reactions(replies=m(roots, "reply_count") if "replies" in includes else 0.0,
                      quotes_of_root=m(roots, "quote_count") if "quotes" in includes else 0.0,
                      quotes_of_reply=m(replies, "quote_count") if "quotes" in includes else 0.0)
        for include in includes:
            name, endpoint, _ = CASCADE_LISTS[include]
            page = ENDPOINTS[endpoint].pages[1] if endpoint else 100
            r.listed[include] = m(posts, name)
            r.pages[include] = (sum(pages(int(metric(t, name)), page) for t in posts) / len(posts)) if posts else 1.0
        ends.append(r)
    return ends[0], ends[1], ends[2]


@dataclass
class CascadeSize:
    posts: list[float] = field(default_factory=list)  # posts found per level (1..depth)
    expanded: list[float] = field(default_factory=list)  # posts expanded per level
    listed: dict[str, float] = field(default_factory=dict)  # include -> objects listed, every level
    requests: dict[str, float] = field(default_factory=dict)  # include -> requests, every level


def _grow(job: JobArgs, includes: list[str], level1: tuple[float, float, dict[str, float], dict[str, float]],
          seeds: int, per_post: Reactions) -> CascadeSize:
    """Levels 1..depth: level 1 from the seeds (thread posts, quotes, listed objects and requests), each
    deeper one from the posts of the level above and what a post brings (``per_post``), within max_tweets."""
    replies, roots, listed, requests = level1
    size = CascadeSize([replies + roots], [float(seeds)], dict(listed), dict(requests))
    expanded = float(seeds)
    for _ in range(2, job.depth + 1):
        share = 1.0
        if job.max_tweets is not None:
            room = max(0.0, job.max_tweets - expanded)
            share = min(1.0, room / (replies + roots)) if replies + roots else 0.0
        replies, roots = replies * share, roots * share
        expanded += replies + roots
        size.expanded.append(replies + roots)
        for include in includes:
            n = per_post.listed.get(include, 0.0) * (replies + roots)
            asked = per_post.pages.get(include, 1.0) * (roots if include == "replies" else replies + roots)
            if include != "replies":
                size.listed[include] = size.listed.get(include, 0.0) + n
            size.requests[include] = size.requests.get(include, 0.0) + asked
        replies, roots = roots * per_post.replies, roots * per_post.quotes_of_root + replies * per_post.quotes_of_reply
        size.posts.append(replies + roots)
    return size


def _cascade(client: Any, job: JobArgs, volume: Volume, spidercls: Any, sample: int = 100) -> None:
    """cascade to depth N: level 1 from the seeds' public_metrics (and a count of each seed's thread:
    ``conversation_id:`` on the counts endpoint), the levels below from a sample of level 1 — the first
    page of the first seed's thread and of its quotes, as the crawl fetches them — whose public_metrics
    say what each post brings (a root its thread's replies and quotes, a reply its quotes, each its
    retweeters and likers), level after level; a range from the sample's spread (two standard errors).
    Includes (authors, mentioned users) from the same sample (:func:`includes_model`)."""
    from tweetform.spiders.search import search_endpoint

    includes = [i for i in spidercls.includes(job) if i in CASCADE_LISTS]
    if "retweet_times" in spidercls.includes(job):
        volume.notes.append("include=retweet_times: the retweeters' timelines (a Post read per tweet, back to each retweet) are "
                            "not counted here; on the sandbox they cost about 7 times the cascade itself (README, Cascades)")
    seeds = list(dict.fromkeys(job.tweet_ids))
    tweets = _seed_tweets(client, seeds, CASCADE_FIELDS)
    volume.add("/2/tweets", math.ceil(len(seeds) / 100))
    volume.bill(pricing.POST, len(tweets))
    search = search_endpoint(job)
    replies = roots = 0.0
    listed: dict[str, float] = {}
    requests: dict[str, float] = {}
    conversations = list(dict.fromkeys(int(t.get("conversation_id") or tid) for tid, t in tweets.items()))
    for include in includes:
        name, endpoint, _ = CASCADE_LISTS[include]
        page = ENDPOINTS[endpoint or search].pages[1]
        if include == "replies":  # one search per thread: its size from the counts endpoint
            sizes = [count_posts(client, f"conversation_id:{c}", job) for c in conversations]
            replies = float(sum(sizes))
            requests[include] = float(sum(pages(n, page) for n in sizes))
            continue
        counts = [int(((tweets.get(t) or {}).get("public_metrics") or {}).get(name, 0)) for t in seeds]
        requests[include] = float(sum(pages(n, page) for n in counts))
        if include == "quotes":
            roots = float(sum(counts))
        else:
            listed[include] = float(sum(counts))
    first = next((t for t in seeds if t in tweets), None)
    model = None
    basis = (f"level 1 from {len(tweets)} seed(s) looked up ({CASCADE_FIELDS}) and {len(conversations)} thread count(s)"
             if "replies" in includes else f"level 1 from {len(tweets)} seed(s) looked up ({CASCADE_FIELDS})")
    mid = low = high = Reactions()
    if job.depth > 1 and sample > 0 and first is not None and (replies or roots):
        posts, sample_pages = _cascade_sample(client, job, first, int(tweets[first].get("conversation_id") or first), sample)
        mid, low, high = _reactions(posts, includes)
        merged = {"data": [t for p in sample_pages for t in p.get("data") or []],
                  "includes": {"tweets": [t for p in sample_pages for t in (p.get("includes") or {}).get("tweets") or []]}}
        if posts:
            model = includes_model(merged)
        basis += (f"; levels 2..{job.depth} from a sample of {len(posts)} level-1 post(s) (their public_metrics: a thread "
                  f"{mid.replies:.2f}, quotes {mid.quotes_of_root:.2f} of a root and {mid.quotes_of_reply:.2f} of a reply, "
                  "each level from the one above), so it is a range (two standard errors)")
    elif job.depth > 1:
        basis += f"; levels 2..{job.depth} not sampled (--sample 0 or nothing at level 1): counted as bringing nothing"
    ends = []
    for per_post in (mid, low, high):
        size = _grow(job, includes, (replies, roots, listed, requests), len(tweets), per_post)
        posts_total = sum(size.posts)
        users = size.listed.get("retweets", 0.0)
        included_users = model(round(posts_total + len(tweets)))[0] if model is not None else 0.0
        usd = ((len(tweets) + posts_total) * pricing.price(pricing.POST) + (users + included_users) * pricing.price(pricing.USER)
               + size.listed.get("likes", 0.0) * pricing.price(pricing.LIKE))
        ends.append((size, posts_total, users, included_users, usd))
    size, posts_total, users, included_users, _ = ends[0]
    for include in includes:
        endpoint = CASCADE_LISTS[include][1] or search
        volume.add(endpoint, round(size.requests.get(include, 0.0)))
    volume.bill(pricing.POST, round(posts_total))
    volume.bill(pricing.USER, round(users + included_users))
    if "likes" in includes:
        volume.bill(pricing.LIKE, round(size.listed.get("likes", 0.0)))
    volume.tweets, volume.users = round(posts_total) + len(tweets), round(users)
    if model is not None:
        volume.sampled = True
    else:
        _includes(volume, "/2/tweets/:id/quote_tweets", round(posts_total))
    seed_usd = pricing.price(pricing.POST) * len(tweets)
    volume.usd_range = (min(e[4] for e in ends), max(e[4] for e in ends)) if job.depth > 1 else None
    volume.basis = basis
    found, expanded = [round(n) for n in size.posts], [round(n) for n in size.expanded]
    end = len(found)  # a deep depth's empty levels are said once, not listed one by one
    while end > 1 and found[end - 1] == found[end - 2] == expanded[end - 1] == 0:
        end -= 1
    volume.notes.append(f"cascade: {', '.join(f'{n:,}' for n in found[:end])} post(s) found at depth(s) 1..{end}, "
                        f"{', '.join(f'{n:,}' for n in expanded[:end])} expanded at level(s) 1..{end} "
                        f"(seeds: ${seed_usd:.3f})" + (f"; levels {end + 1}..{job.depth}: none" if end < job.depth else ""))


def _user_lists(job: JobArgs, volume: Volume, spidercls: Any, counts: Mapping[int, Any]) -> None:
    """liked_tweets, mentions, lists of users, timeline archive=true: per seed user, from its counts."""
    from tweetform.spiders.paged import USER_RELATIONS

    seeds = list(counts.values())
    if job.spider == "timeline":
        endpoint, kind, per_user = "/2/tweets/search/all", pricing.POST, lambda c: c.statuses
    elif job.spider == "liked_tweets":
        endpoint, kind, per_user = spidercls.endpoint, pricing.POST, lambda c: c.likes
    elif job.spider == "mentions":
        endpoint, kind, per_user = spidercls.endpoint, pricing.POST, lambda c: MENTIONS_CAP
        volume.notes.append(f"mentions: the volume is unknown before crawling; counted as the API's cap, {MENTIONS_CAP} per user")
    else:
        endpoint, kind = USER_RELATIONS[job.relation or ""][0], pricing.LIST
        if job.relation == "memberships":
            per_user = lambda c: c.listed  # noqa: E731
        else:
            per_user = lambda c: 0  # noqa: E731
            volume.notes.append(f"{job.relation} lists: the number is unknown before crawling; counted as one page each")
    limit = job.max_tweets if kind == pricing.POST else None
    page = ENDPOINTS[endpoint].pages[1]
    total = 0
    for c in seeds:
        n = 0 if (not c.exists or c.protected) else per_user(c)
        n = min(n, limit) if limit else n
        volume.add(endpoint, pages(n, page))
        total += n
    unknown = len(set(job.user_ids)) - sum(1 for c in seeds if c.user_id in set(job.user_ids))
    if unknown > 0:
        volume.add(endpoint, unknown)
    volume.bill(kind, total)
    if kind == pricing.POST:
        volume.tweets = total
        _includes(volume, endpoint, total)
    volume.users = len(seeds) + max(0, unknown)


def _lists(client: Any, job: JobArgs, volume: Volume) -> None:
    from tweetform.spiders.paged import LIST_RELATIONS

    endpoint, _, limit_arg = LIST_RELATIONS[job.relation or ""]
    lists = list(dict.fromkeys(job.list_ids))
    if job.relation == "lookup":
        volume.add(endpoint, len(lists))
        volume.bill(pricing.LIST, len(lists))
        volume.exact = True
        return
    if job.relation == "tweets":
        n = job.max_tweets or ENDPOINTS[endpoint].pages[1]
        volume.add(endpoint, len(lists) * pages(n, ENDPOINTS[endpoint].pages[1]))
        volume.bill(pricing.POST, n * len(lists))
        volume.tweets = n * len(lists)
        volume.notes.append(f"a list's tweets are unknown before crawling; counted as {n} per list (give max_tweets)")
        return
    metric = "member_count" if job.relation == "members" else "follower_count"
    total = 0
    for lid in lists:
        status, body = client.get("/2/lists/:id", {"list.fields": "member_count,follower_count"}, lid)
        n = int(((body or {}).get("data") or {}).get(metric, 0)) if status == 200 else 0
        n = min(n, job.max_users) if job.max_users else n
        volume.add(endpoint, pages(n, ENDPOINTS[endpoint].pages[1]))
        total += n
    volume.bill(pricing.USER, total)
    volume.users = total


def measure(client: Any, job: JobArgs, spidercls: Any, counts: Mapping[int, Any], sample: int = 100) -> Volume:
    """The volume of a collection job (module docstring); ``counts``: the seed users' counts;
    ``sample``: posts of one page read to estimate the includes of a search or conversation (0: none)."""
    volume = Volume()
    before = client.requests
    if job.spider == "search":
        _search(client, job, volume, sample)
    elif job.spider == "conversation":
        _conversation(client, job, volume, sample)
    elif job.spider in TWEET_METRIC:
        _tweet_lists(client, job, volume, spidercls)
    elif job.spider == "cascade":
        _cascade(client, job, volume, spidercls, sample)
    elif job.spider == "counts":
        endpoint = "/2/tweets/counts/all" if job.archive else "/2/tweets/counts/recent"
        n = len(set(job.all_queries)) * counts_pages(job)
        volume.add(endpoint, n)
        volume.bill(pricing.REQUEST_KIND[endpoint], n)
        volume.exact = True
    elif job.spider == "lists" and job.list_ids:
        _lists(client, job, volume)
    else:
        _user_lists(job, volume, spidercls, counts)
    volume.plan_requests = client.requests - before
    return volume


def needs_volume(job: JobArgs) -> bool:
    """Whether the plan of a job comes from :func:`measure` (else from the seeds' counts alone)."""
    collection = job.spider in ("quotes", "retweeted_by", "liking_users", "liked_tweets", "mentions", "lists", "counts", "conversation",
                                "cascade")
    return collection or (job.api == "2" and job.spider == "search") or (job.spider == "timeline" and job.archive)
