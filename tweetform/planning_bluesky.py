"""``scrapy plan … -a api=bluesky``: requests and time of a Bluesky job, before it starts; $0.

Bluesky's public reads are free, so the plan has no dollars and no budget: it estimates the
requests each method will take and how long the per-IP rate limit makes them last.

* Seeds' counts from ``app.bsky.actor.getProfiles`` (25 a request, DIDs and handles alike):
  ``followsCount``, ``followersCount``, ``postsCount``; a seed the AppView does not return
  (deactivated, taken down, missing) costs one request answered with an error, and a handle
  one ``resolveHandle`` first.
* friends / followers (``getFollows`` / ``getFollowers``, 100 a page): level 1 from the seeds'
  counts; deeper levels extrapolated from a sample of level 2 — a page of each of a few seeds'
  lists, then those accounts' counts with ``getProfiles`` — by the X plan's model
  (:func:`tweetform.planning._network`), with its basis and a range of requests (the sample's
  mean give or take two standard errors; lists overlap, so a real crawl is nearer the low end).
* timeline (``getAuthorFeed``, 100 a page): ``min(postsCount, max_tweets)`` entries per seed
  (reposts come on top of ``postsCount`` on Bluesky's AppView; the sandbox counts them in).
* search (``searchPosts``, 100 a page, needs an account session): ``max_tweets``, or the
  ``hitsTotal`` of one sample page (when the host sends it).
* users / tweets look-ups: 25 a request, exact; quotes, retweeted_by, liking_users and conversation:
  the seed posts' ``quoteCount``, ``repostCount``, ``likeCount`` from ``getPosts`` (a thread is one
  ``getPostThread`` answer).

Time: every method draws on one limit per IP (``ratelimit-policy`` of the plan's own answers,
e.g. ``3000;w=300``, else ``TWEETFORM_BLUESKY_RATE`` per 5 minutes); each proxy is a lane, so
``lanes × limit`` requests fit in a window and ``w`` windows take about ``w − 1`` window waits.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any, Mapping

from tweetform import exitcodes
from tweetform.api import bluesky
from tweetform.credentials import load_credentials
from tweetform.job import JobArgs
from tweetform.api.endpoints import BLUESKY
from tweetform.planning import PLAN_WAIT, Counts, EndpointPlan, Estimate, PlanError, PlanSpend, _network, pages_for, plan_job
from tweetform.proxies.config import load_proxy_list
from tweetform.quota.book import pace_slices
from tweetform.quota.gate import human

SAMPLE_SEEDS = 5  # the seeds whose lists' first pages make the sample of level 2
PAGE = 100  # getFollows, getFollowers, getAuthorFeed, searchPosts, getQuotes, getRepostedBy, getLikes: the most a page
BATCH = 25  # getProfiles, getPosts: the most a request
PACE_WINDOW = 300.0  # TWEETFORM_BLUESKY_RATE is per 5 minutes
POLICY = re.compile(r"^\s*(\d+)\s*;\s*w=(\d+)")
#: collection spiders: the seed post's count that sizes its list, and the list's method
COLLECTIONS = {"quotes": ("quoteCount", "app.bsky.feed.getQuotes"), "retweeted_by": ("repostCount", "app.bsky.feed.getRepostedBy"),
               "liking_users": ("likeCount", "app.bsky.feed.getLikes")}


class XrpcClient:
    """GETs (and one ``createSession``, for a search sample) for the plan's look-ups. A 429 waits for its
    ``ratelimit-reset`` if that comes within ``max_wait`` seconds, else the plan says why in one line."""

    def __init__(self, appview: str, pds: str, timeout: float = 30.0, max_wait: float = PLAN_WAIT) -> None:
        import requests

        self.appview, self.pds = appview.rstrip("/"), pds.rstrip("/")
        self.session = requests.Session()
        self.timeout = timeout
        self.max_wait = max_wait
        self.waited = 0.0
        self.requests = 0
        self.policy: tuple[int, float] | None = None  # (requests, window seconds) a host published
        self.token = ""  # an account session's access token (search), never shown

    def get(self, nsid: str, params: Mapping[str, Any], host: str = "appview") -> tuple[int, Any]:
        import requests

        base = self.pds if host == "pds" else self.appview
        headers = {"Authorization": f"Bearer {self.token}"} if host == "pds" and self.token else {}
        while True:
            try:
                resp = self.session.get(f"{base}/xrpc/{nsid}", params=dict(params), headers=headers, timeout=self.timeout)
            except requests.RequestException as exc:
                raise PlanError(f"{nsid} failed: {type(exc).__name__} ({base} cannot be reached); the estimate is not "
                                "possible now", exitcodes.UNREACHABLE) from None
            self.requests += 1
            self._read_policy(resp.headers)
            if resp.status_code != 429:
                try:
                    return resp.status_code, resp.json()
                except ValueError:
                    if resp.status_code == 200:  # cut short or not JSON: not an answer the plan can read
                        raise PlanError(f"{nsid} answered HTTP 200 with a body that is not JSON (cut short?): the estimate "
                                        "is not possible now; run it again", exitcodes.UNREACHABLE) from None
                    return resp.status_code, None
            reset = _number(resp.headers.get("ratelimit-reset")) or time.time() + 60.0
            wait = max(0.0, reset - time.time()) + 1.0
            if self.waited + wait > self.max_wait:
                raise PlanError(f"the estimate is not possible now: this IP's rate limit for {base} is used up until "
                                f"{time.strftime('%H:%M:%S UTC', time.gmtime(reset))} ({human(wait)}; scrapy plan waits up to "
                                f"{human(self.max_wait)}, --wait SECONDS for longer); run it again then", exitcodes.QUOTA_USED_UP)
            time.sleep(wait)
            self.waited += wait

    def login(self, handle: str, app_password: str) -> bool:
        """An account session on the PDS for searchPosts; False (and no token) when it is refused."""
        import requests

        try:
            resp = self.session.post(f"{self.pds}/xrpc/com.atproto.server.createSession",
                                     json={"identifier": handle, "password": app_password}, timeout=self.timeout)
        except requests.RequestException as exc:
            raise PlanError(f"createSession failed: {type(exc).__name__} ({self.pds} cannot be reached); the estimate is "
                            "not possible now", exitcodes.UNREACHABLE) from None
        self.requests += 1
        try:
            body = resp.json() if resp.headers.get("content-type", "").startswith("application/json") else None
        except ValueError:  # cut short or not JSON: no session (the plan says it has no sample)
            body = None
        if resp.status_code != 200 or not isinstance(body, dict) or not body.get("accessJwt"):
            return False
        self.token = str(body["accessJwt"])
        return True

    def _read_policy(self, headers: Mapping[str, str]) -> None:
        m = POLICY.match(headers.get("ratelimit-policy") or "")
        if m:
            self.policy = (int(m.group(1)), float(m.group(2)))
        elif headers.get("ratelimit-limit") and self.policy is None:
            self.policy = (int(_number(headers.get("ratelimit-limit")) or 0), PACE_WINDOW)


def _number(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _counts(profile: Mapping[str, Any]) -> Counts:
    """A profile's counts; ``user_id`` holds the DID (Bluesky has no numeric ids)."""
    return Counts(profile["did"], str(profile.get("handle") or ""), int(profile.get("followersCount") or 0),  # type: ignore[arg-type]
                  int(profile.get("followsCount") or 0), int(profile.get("postsCount") or 0))


def batched(client: XrpcClient, nsid: str, param: str, items: list[str], member: str) -> list[dict[str, Any]]:
    """A look-up of up to 25 items a request (``getProfiles``, ``getPosts``): the objects of every answer's
    ``member``; a failing answer makes the plan impossible now (one line)."""
    found: list[dict[str, Any]] = []
    for i in range(0, len(items), BATCH):
        status, body = client.get(nsid, {param: items[i: i + BATCH]})
        if status != 200 or not isinstance(body, dict):
            raise PlanError(f"{nsid.rsplit('.', 1)[-1]} answered HTTP {status}: the estimate is not possible now",
                            exitcodes.UNREACHABLE if status >= 500 else exitcodes.ERROR)
        found += [p for p in body.get(member) or [] if isinstance(p, dict)]
    return found


def profiles(client: XrpcClient, actors: list[str]) -> list[Counts]:
    """``getProfiles``, 25 actors (DIDs or handles) a request: the counts of those the AppView returns."""
    return [_counts(p) for p in batched(client, "app.bsky.actor.getProfiles", "actors", actors, "profiles") if p.get("did")]


def seed_entries(job: JobArgs, counts: Mapping[str, Counts]) -> list[Counts | None]:
    """The seeds in the order the spider takes them: DIDs (None: not returned, one failing request),
    then the handles that resolve (a handle that does not costs its resolveHandle only)."""
    by_handle = {c.screen_name.lower(): c for c in counts.values() if c.screen_name}
    entries: list[Counts | None] = [counts.get(did) for did in dict.fromkeys(job.dids)]
    return entries + [by_handle[h.lower()] for h in dict.fromkeys(job.handles) if h.lower() in by_handle]


def sample_level2(client: XrpcClient, job: JobArgs, seeds: list[Counts | None], size: int) -> list[Counts]:
    """Counts of up to ``size`` accounts of level 2: the first page of the lists of up to
    :data:`SAMPLE_SEEDS` seeds (``size`` shared between them: one seed's list alone can be far from
    the level's mix), then those accounts' profiles. A sample that fails is never extrapolated from."""
    nsid = "app.bsky.graph.getFollows" if job.spider == "friends" else "app.bsky.graph.getFollowers"
    member = "follows" if job.spider == "friends" else "followers"
    listing = [c for c in seeds if c is not None and (c.friends if job.spider == "friends" else c.followers) > 0][:SAMPLE_SEEDS]
    listed: list[str] = []
    for seed in listing:
        status, body = client.get(nsid, {"actor": seed.user_id, "limit": max(1, min(PAGE, size // len(listing)))})
        if status != 200 or not isinstance(body, dict):
            raise PlanError(f"the sample of level 2 (one page of {seed.user_id}'s list) answered HTTP {status}: the estimate "
                            "is not possible now", exitcodes.UNREACHABLE if status >= 500 else exitcodes.ERROR)
        listed += [str(p["did"]) for p in body.get(member) or [] if isinstance(p, dict) and bluesky.is_did(str(p.get("did")))]
    return profiles(client, list(dict.fromkeys(listed))[:size])


def plan_any(settings: Any, job: JobArgs, sample: int = 100, wait: float = PLAN_WAIT) -> tuple[Estimate, dict, int, int, list, PlanSpend]:
    """The plan of a job of either API: :func:`plan_bluesky` for ``api=bluesky``, else X's
    :func:`tweetform.planning.plan_job` (``scrapy plan``, ``push --plan``, the deep-crawl warning)."""
    if job.api == BLUESKY:
        return plan_bluesky(settings, job, sample, wait)
    return plan_job(settings, job, sample, wait)


def plan_bluesky(settings: Any, job: JobArgs, sample: int = 100, wait: float = PLAN_WAIT
                 ) -> tuple[Estimate, dict[str, Counts], int, int, list[Counts], PlanSpend]:
    """:func:`tweetform.planning.plan_job` for ``api=bluesky``: (estimate, seed counts, look-up requests,
    sample requests, sample, what the plan's own requests cost — nothing)."""
    if job.spider not in ("friends", "followers", "timeline", "search", "users", "tweets", "conversation", "cascade", *COLLECTIONS):
        raise PlanError(f"scrapy plan does not estimate {job.spider} -a api=bluesky yet")
    client = XrpcClient(settings.get("TWEETFORM_BLUESKY_APPVIEW") or "", settings.get("TWEETFORM_BLUESKY_PDS") or "",
                        max_wait=wait)
    counts: dict[str, Counts] = {}
    if job.spider in ("friends", "followers", "timeline"):
        counts = {c.user_id: c for c in profiles(client, list(dict.fromkeys([*job.dids, *job.handles])))}  # type: ignore[misc]
    lookups = client.requests
    requests: dict[str, int] = {}
    est = Estimate(job.spider, job.api, PACE_WINDOW, [])
    notes: list[str] = []
    sample_users: list[Counts] = []
    entries = seed_entries(job, counts)
    if job.handles and job.spider in ("friends", "followers", "timeline"):
        requests["com.atproto.identity.resolveHandle"] = len(set(job.handles))
    missing = sum(1 for c in entries if c is None)
    if missing:
        notes.append(f"{missing} seed(s) the AppView did not return (deactivated, taken down or missing) count one request each")
    unresolved = [h for h in dict.fromkeys(job.handles) if h.lower() not in {c.screen_name.lower() for c in counts.values()}]
    if unresolved and job.spider in ("friends", "followers", "timeline"):
        notes.append(f"{len(unresolved)} handle(s) no account has ({', '.join(unresolved[:3])}{', …' if len(unresolved) > 3 else ''}): "
                     "each costs its resolveHandle only and is an errors record")
    if job.spider in ("friends", "followers"):
        if job.depth > 1 and sample > 0:
            sample_users = sample_level2(client, job, entries, sample)
        _network(job, entries, requests, est, notes, sample_users or None)
        est.resources, est.level_usd, est.per_user_usd, est.usd_range = {}, [], 0.0, None  # free: nothing to bill
        _request_range(job, est, entries, sample_users, requests)
    elif job.spider == "timeline":
        pages = 0
        tweets = 0
        for c in entries:
            n = 0 if c is None else min(c.statuses, job.max_tweets or c.statuses)
            tweets += n
            pages += 1 if c is None else pages_for(n, PAGE)
        requests["app.bsky.feed.getAuthorFeed"] = pages
        est.users, est.tweets, est.exact = len(entries), tweets, False
        est.basis = f"{len(entries)} seed(s) looked up: entries per feed from postsCount (reposts come on top of it on Bluesky's AppView)"
        if job.since_ids or job.feed_filter not in (None, "posts_with_replies"):
            est.exact = False
            notes.append("since_id=auto or a filter: fewer entries are fetched; this counts every post (an upper bound)")
    elif job.spider == "search":
        _search(client, settings, job, requests, est, notes)
    elif job.spider == "users":
        requests["app.bsky.actor.getProfiles"] = math.ceil(len(set(job.dids) | set(job.handles)) / BATCH)
        est.users = len(set(job.dids) | set(job.handles))
    elif job.spider == "tweets":
        requests["app.bsky.feed.getPosts"] = math.ceil(len(set(job.uris)) / BATCH)
        est.tweets = len(set(job.uris))
    elif job.spider == "cascade":
        _cascade(client, job, requests, est, notes, sample)
    else:
        _collection(client, job, requests, est, notes)
    sampled = client.requests - lookups
    _pace(settings, client, est, requests, notes)
    est.notes = notes
    if not est.basis:
        est.basis = "exact: from the look-up's counts" if est.exact else "estimated: see the notes"
    return est, counts, lookups, sampled, sample_users, PlanSpend([])


def _request_range(job: JobArgs, est: Estimate, entries: list[Counts | None], sample: list[Counts],
                   requests: dict[str, int]) -> None:
    """The low and high end of a deep network crawl's requests: the extrapolated levels' pages with the sample's
    mean pages give or take two standard errors (lists overlapping up to a quarter at the low end)."""
    nsid = "app.bsky.graph.getFollows" if job.spider == "friends" else "app.bsky.graph.getFollowers"
    total = requests.get(nsid, 0)
    if len(est.levels) < 2 or not sample:
        est.requests_range = (total, total)
        return
    size = [pages_for(c.friends if job.spider == "friends" else c.followers, PAGE) for c in sample]
    mean = sum(size) / len(size)
    spread = 2 * (sum((s - mean) ** 2 for s in size) / max(1, len(size) - 1)) ** 0.5 / len(size) ** 0.5
    level1 = sum(1 if c is None else pages_for(c.friends if job.spider == "friends" else c.followers, PAGE)
                 for c in entries[: job.max_users or None])
    deeper = total - level1
    low = level1 + deeper * max(0.0, mean - spread) / mean * 0.75 if mean else float(total)
    high = level1 + deeper * (mean + spread) / mean if mean else float(total)
    est.requests_range = (math.floor(low), math.ceil(high))
    est.basis = est.basis.replace("so it is a range", f"so it is a range: {est.requests_range[0]:,}-{est.requests_range[1]:,} requests")


def _search(client: XrpcClient, settings: Any, job: JobArgs, requests: dict[str, int], est: Estimate, notes: list[str]) -> None:
    accounts = load_credentials(settings, "bluesky")
    hits: int | None = None
    if accounts and client.login(accounts[0].handle, accounts[0].app_password):
        params = {"q": job.all_queries[0] if job.all_queries else "", "limit": PAGE, "sort": "latest", "lang": job.lang,
                  "since": job.start_time, "until": job.end_time}
        status, body = client.get("app.bsky.feed.searchPosts", {k: v for k, v in params.items() if v}, host="pds")
        if status == 200 and isinstance(body, dict):
            if not body.get("cursor"):
                hits = len(body.get("posts") or [])  # it all fits one page
            elif isinstance(body.get("hitsTotal"), int):
                hits = body["hitsTotal"]
    queries = max(1, len(set(job.all_queries)))
    if hits is not None:
        n = min(hits, job.max_tweets) if job.max_tweets else hits
        requests["app.bsky.feed.searchPosts"] = queries * pages_for(n, PAGE)
        est.tweets = queries * n
        est.exact = False
        notes.append(f"a sample page of the first query: {hits:,} posts match (hitsTotal may be rounded)"
                     + ("; the other queries counted alike" if queries > 1 else ""))
    elif job.max_tweets:
        requests["app.bsky.feed.searchPosts"] = queries * pages_for(job.max_tweets, PAGE)
        est.tweets = queries * job.max_tweets
        est.exact = False
        notes.append("max_tweets per query (an upper bound: fewer posts may match)")
    else:
        requests["app.bsky.feed.searchPosts"] = queries
        est.exact = False
        notes.append("search volume is unknown before searching (no Bluesky account to sample with, or the host sent no "
                     f"hitsTotal): each request returns up to {PAGE} posts; give max_tweets for an estimate")


def _collection(client: XrpcClient, job: JobArgs, requests: dict[str, int], est: Estimate, notes: list[str]) -> None:
    """quotes, retweeted_by, liking_users (the seed posts' counts), conversation (one thread answer per root)."""
    uris = list(dict.fromkeys(job.uris))
    posts = _seed_posts(client, uris, notes)
    requests["app.bsky.feed.getPosts"] = math.ceil(len(uris) / BATCH)  # the crawl looks its seeds up too
    if job.spider == "conversation":
        from tweetform.export.bluesky import reply_root

        roots = {reply_root(p) or p.get("uri") for p in posts}
        requests["app.bsky.feed.getPostThread"] = len(roots)
        est.tweets = sum(int(p.get("replyCount") or 0) for p in posts)
        notes.append("a thread is one getPostThread answer, whatever its size")
        return
    field_name, nsid = COLLECTIONS[job.spider]
    cap = job.max_tweets if job.spider == "quotes" else job.max_users
    sizes = [min(int(p.get(field_name) or 0), cap or int(p.get(field_name) or 0)) for p in posts]
    requests[nsid] = sum(pages_for(n, PAGE) for n in sizes)
    if job.spider == "quotes":
        est.tweets = sum(sizes)
    else:
        est.users = sum(sizes)
    est.exact = False
    notes.append(f"from the seed posts' {field_name} (the AppView leaves hidden accounts and posts out of the lists)")


def _seed_posts(client: XrpcClient, uris: list[str], notes: list[str]) -> list[dict[str, Any]]:
    """The seed posts' views (``getPosts``, 25 a request); the ones the AppView left out are noted."""
    posts = batched(client, "app.bsky.feed.getPosts", "uris", uris, "posts")
    lost = bluesky.missing_uris({"posts": posts}, uris)
    if lost:
        notes.append(f"{len(lost)} seed post(s) the AppView did not return (deleted, taken down or missing: "
                     f"{', '.join(lost[:2])}{', …' if len(lost) > 2 else ''}): each is an errors record, nothing to list")
    return posts


#: cascade include -> (the postView count that sizes the list, its method; replies: one thread answer)
CASCADE_LISTS = {"replies": ("replyCount", "app.bsky.feed.getPostThread"), "quotes": ("quoteCount", "app.bsky.feed.getQuotes"),
                 "retweets": ("repostCount", "app.bsky.feed.getRepostedBy"), "likes": ("likeCount", "app.bsky.feed.getLikes")}


def _cascade(client: XrpcClient, job: JobArgs, requests: dict[str, int], est: Estimate, notes: list[str], size: int) -> None:
    """cascade to depth N: level 1 from the seeds' counts (``getPosts``) and their threads; the levels below
    from a sample of level 1 — the threads under up to :data:`SAMPLE_SEEDS` seeds and the first page of a
    seed's quotes, as the crawl fetches them — whose posts' counts say what a post brings: a post that is not
    a reply its thread (one answer) and its quotes, each its reposts' and likes' pages; a range from the
    sample's spread (two standard errors)."""
    includes = (job.include or "replies,quotes,retweets").split(",")
    uris = list(dict.fromkeys(job.uris))
    seeds = _seed_posts(client, uris, notes)
    requests["app.bsky.feed.getPosts"] = math.ceil(len(uris) / BATCH)
    replies: list[dict[str, Any]] = []  # the sample: thread posts and quotes of level 1
    quotes: list[dict[str, Any]] = []
    nests: list[float] = []  # thread posts per direct reply, in the sampled threads
    thread_sizes: dict[str, int] = {}
    if "replies" in includes:
        for post in [p for p in seeds if int(p.get("replyCount") or 0) > 0][:SAMPLE_SEEDS]:
            status, body = client.get("app.bsky.feed.getPostThread", {"uri": post["uri"], "depth": 1000, "parentHeight": 0})
            if status != 200 or not isinstance(body, dict):
                raise PlanError(f"the sample of level 1 (the thread under {post['uri']}) answered HTTP {status}: the "
                                "estimate is not possible now", exitcodes.UNREACHABLE if status >= 500 else exitcodes.ERROR)
            below = bluesky.thread_below(body.get("thread"))[0]
            thread_sizes[post["uri"]] = len(below)
            nests.append(len(below) / int(post["replyCount"]))
            replies += below
    if "quotes" in includes:
        quoted = next((p for p in seeds if int(p.get("quoteCount") or 0) > 0), None)
        if quoted is not None:
            status, body = client.get("app.bsky.feed.getQuotes", {"uri": quoted["uri"], "limit": PAGE})
            if status != 200 or not isinstance(body, dict):
                raise PlanError(f"the sample of level 1 (the quotes of {quoted['uri']}) answered HTTP {status}: the "
                                "estimate is not possible now", exitcodes.UNREACHABLE if status >= 500 else exitcodes.ERROR)
            quotes += [p for p in body.get("posts") or [] if isinstance(p, dict)]
    replies, quotes = (replies[: max(1, size // 2)], quotes[: max(1, size // 2)]) if size else ([], [])
    sample = replies + quotes
    nest = sum(nests) / len(nests) if nests else 1.0

    def count(post: dict[str, Any], name: str) -> int:
        return int(post.get(name) or 0)

    def brings(post: dict[str, Any], thread: int | None = None, seed: bool = False) -> tuple[float, float]:
        """(requests, posts found) of expanding one post (a seed's thread below it is fetched even when it replies)."""
        root = seed or not bluesky.is_reply(post)
        reqs, found = 0.0, 0.0
        for include in includes:
            name, _ = CASCADE_LISTS[include]
            if include == "replies":
                if root:
                    reqs += 1
                    found += thread if thread is not None else count(post, name) * nest
                continue
            reqs += pages_for(count(post, name), PAGE)
            found += count(post, name) if include == "quotes" else 0
        return reqs, found

    level1 = [brings(p, thread_sizes.get(p["uri"]), seed=True) for p in seeds]
    # a post of the levels below is a thread post or a quote, in level 1's proportions (each kind from its own sample)
    in_threads = sum(thread_sizes.get(p["uri"], count(p, "replyCount") * nest) for p in seeds) if "replies" in includes else 0.0
    quoting = float(sum(count(p, "quoteCount") for p in seeds)) if "quotes" in includes else 0.0
    kinds = [(kind, n / (in_threads + quoting)) for kind, n in ((replies or quotes, in_threads), (quotes or replies, quoting))
             if n and in_threads + quoting]
    per_post = [(brings(p), weight / len(kind)) for kind, weight in kinds for p in kind]
    reqs_mean = sum(r * w for (r, _), w in per_post)
    found_mean = sum(f * w for (_, f), w in per_post)
    spread = 2 * (sum(w * (f - found_mean) ** 2 for (_, f), w in per_post)) ** 0.5 / max(1, len(per_post)) ** 0.5
    reqs_spread = 2 * (sum(w * (r - reqs_mean) ** 2 for (r, _), w in per_post)) ** 0.5 / max(1, len(per_post)) ** 0.5

    def grow(found_each: float, reqs_each: float) -> tuple[float, list[int]]:
        """Requests of the levels below 1, and the posts expanded per level, when each post finds ``found_each``
        posts in ``reqs_each`` requests."""
        deeper, expanded, levels, frontier = 0.0, len(seeds), [len(seeds)], sum(f for _, f in level1)
        for _ in range(2, job.depth + 1):
            posts = frontier if job.max_tweets is None else min(frontier, max(0, job.max_tweets - expanded))
            if posts < 0.5:
                break
            levels.append(round(posts))
            expanded += round(posts)
            deeper += posts * reqs_each
            frontier = posts * found_each
        return deeper, levels

    deeper, levels = grow(found_mean, reqs_mean)
    low = grow(max(0.0, found_mean - spread), max(0.0, reqs_mean - reqs_spread))[0]
    high = grow(found_mean + spread, reqs_mean + reqs_spread)[0]
    # the deeper levels' requests shared between the lists as the sample's posts would ask for them
    share = {include: 0.0 for include in includes}
    for (_, w), post in zip(per_post, [p for kind, _ in kinds for p in kind]):
        for include in includes:
            name, _ = CASCADE_LISTS[include]
            share[include] += w * (float(not bluesky.is_reply(post)) if include == "replies" else pages_for(count(post, name), PAGE))
    weight = sum(share.values()) or 1.0
    for include in includes:
        name, nsid = CASCADE_LISTS[include]
        exact = sum(1 if include == "replies" else pages_for(count(p, name), PAGE) for p in seeds)
        if exact or deeper * share[include]:
            requests[nsid] = round(exact + deeper * share[include] / weight)
    first = sum(r for r, _ in level1) + requests["app.bsky.feed.getPosts"]
    est.levels, est.users, est.exact = levels, sum(levels), len(levels) <= 1
    est.requests_range = (math.floor(first + low), math.ceil(first + high))
    est.basis = (f"level 1 exact: {len(seeds)} seed post(s) looked up (their counts"
                 + (f", the threads under {len(thread_sizes)}" if thread_sizes else "") + ")")
    if len(levels) > 1:
        est.basis += (f"; levels 2..{len(levels)} extrapolated from a sample of {len(sample)} posts of level 1 "
                      f"({found_mean:,.2f} ± {spread:,.2f} posts found each, two standard errors), so it is a range: "
                      f"{est.requests_range[0]:,}-{est.requests_range[1]:,} requests")
        notes.append("a post found twice (a quote of two posts of the cascade) is expanded once: the real crawl is smaller")
        if not sample:
            notes.append("no sample (--sample 0, or no seed with replies or quotes): the levels below 1 are not counted")


def _pace(settings: Any, client: XrpcClient, est: Estimate, requests: dict[str, int], notes: list[str]) -> None:
    """Every method shares one limit per IP lane: the rows' time is the whole job's."""
    lanes = max(1, len(load_proxy_list(settings)))
    if client.policy is not None and client.policy[0] > 0:
        limit, window = client.policy
        where = f"the host's ratelimit-policy ({limit:,} per {window:g} s)"
    else:
        rate = settings.getint("TWEETFORM_BLUESKY_RATE", 3000)
        limit, window = pace_slices(rate)  # as the quota book paces it: slices, never the rate in any 5 minutes
        where = f"TWEETFORM_BLUESKY_RATE ({rate:,} per 5 min, sent {limit:,} per {window} s; the host published no limit)"
    per_window = limit * lanes
    total = sum(requests.values())
    windows = math.ceil(total / per_window) if total else 0
    seconds = max(0, windows - 1) * window
    est.window = window
    est.endpoints = [EndpointPlan(nsid, n, lanes, per_window, windows, seconds) for nsid, n in requests.items() if n]
    notes.append(f"paced by {where}, one limit per IP shared by every method: {lanes} lane(s) "
                 f"({'one per proxy' if load_proxy_list(settings) else 'this host, no proxy'})")
