"""How long will a job take? Requests, quota windows and time, before it starts.

:func:`estimate` is a pure function of a job's arguments, the credentials and
the seeds' counts (followers, friends, tweets — from a users look-up,
:func:`lookup_counts`) and the endpoints' rate limits; ``scrapy plan`` prints
it, and ``scrapy status`` can show it live for a running job with
:meth:`Estimate.after` (what is left once some requests have been made).

The model:

* friends / followers: a seed with *n* accounts in its list needs
  ``ceil(n / (page × 0.95))`` pages (pages come back a little short: the API
  drops suspended accounts after cutting a page), at least one; an account
  that cannot be crawled (protected, suspended, missing) costs one request.
  Level 1 is exact from the seeds' counts, and so is the number of accounts
  on level 2. Deeper levels are extrapolated from a sample of level 2 (one page,
  with user objects, of a seed's list: :func:`sample_level2`): each account is
  assumed to list as many accounts, in as many pages, as the sample does on
  average (without a sample, as the seeds do); ``max_users`` caps the users
  expanded. Lists overlap, so a real crawl of several levels is smaller.
* timeline: ``min(tweets, 3,200, max_tweets)`` tweets per user, 100 per page
  (v2) or 200 (v1.1, plus the empty page that ends a timeline).
* search: ``max_tweets`` / 100 pages; without ``max_tweets`` the volume is
  unknown before searching.
* users / tweets look-ups: 100 ids per request, exact.

Dollars (pay-per-use, :mod:`tweetform.api.pricing`): each resource returned,
once per app and UTC day — accounts listed (level 1 exactly; deeper levels at
``LIST_OVERLAP`` of what they list, since lists overlap and an account in two
lists is billed once that day), tweets, users; what v2 expansions add to
``includes`` is shown apart, as an upper bound. :meth:`Estimate.fit` answers the
inverse: how deep, or how many users, a budget pays for.

Quota: per endpoint, the requests are spread over every credential lane that
may call it (user context and app-only have separate limits); each window of
``TWEETFORM_RATE_WINDOW`` seconds serves the sum of their limits, so a job
needing *w* windows on its busiest endpoint finishes after about ``w − 1``
window waits. Endpoints run in parallel; the slowest decides.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from tweetform import exitcodes
from tweetform.api import pricing
from tweetform.cost import dollars, micro
from tweetform.api.endpoints import BLUESKY, ENDPOINTS, V2_TWEET_PARAMS, V2_USER_PARAMS
from tweetform.api.limits import limits_of
from tweetform.credentials import Credential, load_credentials
from tweetform.quota.gate import human
from tweetform.planning_collections import PlanError, Volume, measure, needs_volume
from tweetform.quota.pool import CredentialPool, missing_auth
from tweetform.job import JobArgs

SHORT_PAGE = 0.95  # pages carry this share of a full page on average
# Of the accounts listed at levels >= 2, the share not already billed that UTC day (lists overlap:
# popular accounts are in many of them, friends of friends are often friends). Measured on the
# sandbox's power-law world (depth-2 crawls: 0.82-0.87); real graphs overlap at least as much.
LIST_OVERLAP = 0.85
LIST_OVERLAP_LOW = 0.75  # the low end of a plan's range
KIND_NAMES = {pricing.FOLLOW: ("follow", "follows"), pricing.USER: ("user", "users"), pricing.POST: ("post", "posts"),
              pricing.LIKE: ("like", "likes"), pricing.LIST: ("list", "lists"),
              pricing.COUNTS_RECENT: ("counts request", "counts requests"), pricing.COUNTS_ALL: ("counts request", "counts requests")}
TIMELINE_CAP = 3200


@dataclass(frozen=True)
class Counts:
    """What a users look-up says about one account."""

    user_id: int
    screen_name: str = ""
    followers: int = 0
    friends: int = 0
    statuses: int = 0
    protected: bool = False
    exists: bool = True  # False: suspended, deactivated or never existed
    likes: int = 0  # tweets the account liked (v2 public_metrics.like_count)
    listed: int = 0  # lists the account is a member of


@dataclass
class EndpointPlan:
    endpoint: str
    requests: int
    lanes: int
    per_window: int  # requests all lanes together may send per window
    windows: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Estimate:
    spider: str
    api: str
    window: float
    endpoints: list[EndpointPlan]
    users: int = 0  # users the job expands (network) or reads (timeline)
    tweets: int | None = None  # tweets the job should collect, when known
    exact: bool = True
    notes: list[str] = field(default_factory=list)
    levels: list[int] = field(default_factory=list)  # network: users expanded per level
    resources: dict[str, int] = field(default_factory=dict)  # kind -> resources billed (after the UTC-day dedupe)
    includes_usd: float = 0.0  # v2 expansions: the most their includes may add
    level_usd: list[float] = field(default_factory=list)  # network: dollars per level
    per_user_usd: float = 0.0  # network: dollars per user expanded below level 1
    basis: str = ""  # what the figures rest on: looked up, measured, extrapolated (and from what)
    usd_range: tuple[float, float] | None = None  # extrapolated: the low and high end of what it may cost
    requests_range: tuple[int, int] | None = None  # Bluesky (free): the low and high end of the requests instead

    @property
    def usd(self) -> float:
        """Dollars the job is expected to cost (data; includes not counted, see ``includes_usd``)."""
        return sum(n * pricing.price(kind) for kind, n in self.resources.items())

    @property
    def requests(self) -> int:
        return sum(e.requests for e in self.endpoints)

    @property
    def seconds(self) -> float:
        return max((e.seconds for e in self.endpoints), default=0.0)

    @property
    def windows(self) -> int:
        return max((e.windows for e in self.endpoints), default=0)

    def after(self, done: Mapping[str, int] | int) -> "Estimate":
        """What is left once some requests have been made (``scrapy status``): ``done`` is
        requests per endpoint, or a total (a job's pages + error records written is about
        its requests), taken from the endpoints in the order a crawl uses them."""
        left = []
        total = done if isinstance(done, int) else None
        for e in self.endpoints:
            if total is not None:
                used, total = min(total, e.requests), max(0, total - e.requests)
            else:
                used = int(done.get(e.endpoint, 0))  # type: ignore[union-attr]
            left.append(plan_endpoint(e.endpoint, max(0, e.requests - used), e.lanes, e.per_window, self.window))
        share = sum(e.requests for e in left) / self.requests if self.requests else 0.0  # dollars left: in proportion
        return Estimate(self.spider, self.api, self.window, left, self.users, self.tweets, self.exact, list(self.notes), list(self.levels),
                        {k: round(n * share) for k, n in self.resources.items()}, self.includes_usd * share,
                        list(self.level_usd), self.per_user_usd, self.basis,
                        (self.usd_range[0] * share, self.usd_range[1] * share) if self.usd_range else None,
                        (round(self.requests_range[0] * share), round(self.requests_range[1] * share)) if self.requests_range else None)

    def as_dict(self) -> dict[str, Any]:
        return {"spider": self.spider, "api": self.api, "window": self.window, "requests": self.requests, "windows": self.windows,
                "seconds": self.seconds, "users": self.users, "tweets": self.tweets, "exact": self.exact,
                "levels": self.levels, "notes": self.notes, "endpoints": [e.as_dict() for e in self.endpoints],
                "usd": round(self.usd, 6), "resources": self.resources, "includes_usd": round(self.includes_usd, 6),
                "level_usd": [round(x, 6) for x in self.level_usd], "per_user_usd": round(self.per_user_usd, 6),
                "basis": self.basis, "usd_range": [round(x, 6) for x in self.usd_range] if self.usd_range else None,
                "requests_range": list(self.requests_range) if self.requests_range else None}

    def cost_text(self) -> str:
        """``≈ $12.34 (1,234 follows)``, with the most includes may add."""
        if self.api == BLUESKY:
            return "$0 (Bluesky's public API is free)"
        approx = "" if self.exact else "≈ "
        what = ", ".join(f"{n:,} {KIND_NAMES.get(k, (k, k))[n != 1]}" for k, n in self.resources.items() if n)
        text = f"{approx}{dollars(micro(self.usd))}" + (f" ({what})" if what else "")
        if self.usd_range is not None and not self.exact:
            low, high = self.usd_range
            text += f", between {dollars(micro(low))} and {dollars(micro(high))}"
        if self.includes_usd:
            text += f", plus up to {dollars(micro(self.includes_usd))} for includes (expansions)"
        return text

    def fit(self, budget_usd: float) -> str:
        """``scrapy plan --budget``: what of the job fits in a budget (how deep, how many users)."""
        if not self.level_usd:
            if self.usd <= budget_usd:
                return f"the whole job fits in {dollars(micro(budget_usd))} ({self.cost_text()})"
            unit = self.usd / max(1, sum(self.resources.values()))
            return (f"{dollars(micro(budget_usd))} pays for about {int(budget_usd / unit):,} of the "
                    f"{sum(self.resources.values()):,} resources ({self.cost_text()})")
        spent = 0.0
        for level, (users, cost) in enumerate(zip(self.levels, self.level_usd), 1):
            if spent + cost > budget_usd:
                if level == 1:
                    return (f"{dollars(micro(budget_usd))} does not cover level 1 ({dollars(micro(cost))}): "
                            f"the crawl would stop inside the seeds' lists")
                per_user = self.per_user_usd or cost / max(1, users)
                fits = int((budget_usd - spent) / per_user) if per_user > 0 else users
                return (f"{dollars(micro(budget_usd))} covers depth {level - 1} completely ({dollars(micro(spent))}) and "
                        f"about {min(fits, users):,} of the ≈ {users:,} users of level {level}: "
                        f"depth={level - 1}, or depth={level} with max_users={sum(self.levels[:level - 1]) + min(fits, users):,}")
            spent += cost
        return f"the whole job (depth {len(self.levels)}) fits in {dollars(micro(budget_usd))}: {self.cost_text()}"

    def summary(self, now: float | None = None) -> str:
        """One line: requests, windows and time (what ``scrapy status`` shows)."""
        if not self.endpoints:
            return "nothing to request"
        approx = "" if self.exact else "≈ "
        busiest = max(self.endpoints, key=lambda e: (e.seconds, e.requests))
        if self.seconds <= 0:
            when = "within the current quota window (no waiting)"
        else:
            now = time.time() if now is None else now
            when = f"{approx}{human(self.seconds)}, done about {time.strftime('%H:%M UTC', time.gmtime(now + self.seconds))}"
        return (f"{approx}{self.requests:,} requests, {busiest.windows:,} quota window(s) on {busiest.endpoint} "
                f"({busiest.lanes} {'IP' if self.api == BLUESKY else 'credential'} lane(s), {busiest.per_window:,} requests per "
                f"{window_text(self.window)}): {when}; "
                f"{self.cost_text()}")


def window_text(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def plan_endpoint(endpoint: str, requests: int, lanes: int, per_window: int, window: float) -> EndpointPlan:
    if requests <= 0:
        return EndpointPlan(endpoint, 0, lanes, per_window, 0, 0.0)
    if per_window <= 0:
        return EndpointPlan(endpoint, requests, lanes, 0, 0, math.inf)
    windows = math.ceil(requests / per_window)
    return EndpointPlan(endpoint, requests, lanes, per_window, windows, (windows - 1) * window)


def capacity(endpoint: str, credentials: list[Credential], limits: Mapping[str, Any] | None = None) -> tuple[int, int]:
    """``(lanes, requests per window)`` the credentials give an endpoint."""
    user_limit, app_limit = _limits(endpoint, limits)
    lanes = CredentialPool(credentials).lanes(ENDPOINTS[endpoint])
    return len(lanes), sum(user_limit if lane.kind == "user" else app_limit for lane in lanes)


def _limits(endpoint: str, limits: Mapping[str, Any] | None) -> tuple[int, int]:
    given = (limits or {}).get(endpoint)
    if given is not None:
        if isinstance(given, (int, float)):
            return int(given), int(given)
        user, app = (list(given) + list(given))[:2]
        return int(user), int(app)
    user, app = limits_of(endpoint)  # the one table (tweetform/api/limits.py), as the sandbox enforces it
    return user or 0, app or 0


def pages_for(items: int, page: int) -> int:
    """Pages a list of ``items`` comes in (at least one: an empty list is one page too)."""
    if items <= 0:
        return 1
    return max(1, math.ceil(items / (page * SHORT_PAGE)))


def network_page_size(job: JobArgs) -> int:
    if job.api == BLUESKY:
        return 100
    if job.api == "2":
        return 1000
    return 5000 if job.data_type == "ids" else 200


def network_endpoint(job: JobArgs) -> str:
    if job.api == BLUESKY:
        return "app.bsky.graph.getFollows" if job.spider == "friends" else "app.bsky.graph.getFollowers"
    if job.api == "2":
        return "/2/users/:id/following" if job.spider == "friends" else "/2/users/:id/followers"
    return f"/{job.spider}/{'ids' if job.data_type == 'ids' else 'list'}"


def _lookup_endpoint(job: JobArgs) -> str:
    return "/2/users/by" if job.api == "2" else "/users/lookup"


def estimate(job: JobArgs, credentials: list[Credential], counts: Mapping[int, Counts] | Iterable[Counts], *,
             limits: Mapping[str, Any] | None = None, window: float = 900.0, sample: Iterable[Counts] | None = None,
             volume: Volume | None = None) -> Estimate:
    """Requests, quota windows and time a job needs (see the module docstring). ``sample``:
    counts of accounts of level 2 (:func:`sample_level2`), for the levels below the seeds."""
    if not isinstance(counts, Mapping):
        counts = {c.user_id: c for c in counts}
    by_name = {c.screen_name.lower(): c for c in counts.values() if c.screen_name}
    # seeds in the order the spider takes them; None: an id the look-up did not return
    # (suspended or missing: its request answers with an error); names not found cost nothing
    entries: list[Counts | None] = [counts.get(uid) for uid in dict.fromkeys(job.user_ids)]
    entries += [by_name[n] for n in dict.fromkeys(n.lower() for n in job.screen_names) if n in by_name]
    seeds = [c for c in entries if c is not None]
    unknown = len(entries) - len(seeds)
    requests: dict[str, int] = {}
    notes: list[str] = []
    est = Estimate(job.spider, job.api, window, [])
    if job.screen_names and job.spider not in ("users",):
        requests[_lookup_endpoint(job)] = math.ceil(len(set(job.screen_names)) / 100)
    if unknown > 0 and job.spider not in ("users", "tweets", "search"):
        notes.append(f"{unknown} seed(s) the look-up did not return (suspended or missing) count one request each")

    if volume is not None:  # collection spiders, v2 search: what the API said (planning_collections.py)
        for endpoint, n in volume.requests.items():
            requests[endpoint] = requests.get(endpoint, 0) + n
        for kind, n in volume.resources.items():
            est.resources[kind] = est.resources.get(kind, 0) + n
        est.tweets, est.users, est.exact, est.includes_usd = volume.tweets, volume.users, volume.exact, volume.includes_usd
        est.basis, est.usd_range = volume.basis, volume.usd_range
        notes += volume.notes
    elif job.spider in ("friends", "followers"):
        _network(job, entries, requests, est, notes, list(sample) if sample is not None else None)
    elif job.spider == "timeline":
        page = 100 if job.api == "2" else 200
        endpoint = "/2/users/:id/tweets" if job.api == "2" else "/statuses/user_timeline"
        total_pages, tweets = unknown, 0
        for c in seeds:
            if not c.exists or c.protected:
                total_pages += 1
                continue
            n = min(c.statuses, TIMELINE_CAP, job.max_tweets or TIMELINE_CAP)
            tweets += n
            pages = pages_for(n, page)
            if job.api == "1.1" and not (job.max_tweets and n >= job.max_tweets) and n > 0:
                pages += 1  # the empty page that ends a v1.1 timeline
            total_pages += pages
        requests[endpoint] = total_pages
        est.users, est.tweets = len(seeds) + unknown, tweets
        if job.since_id:
            est.exact = False
            notes.append("since_id: only newer tweets are fetched; this counts every tweet (an upper bound)")
    elif job.spider == "search":
        endpoint = ("/2/tweets/search/all" if job.archive else "/2/tweets/search/recent") if job.api == "2" else "/search/tweets"
        page = 500 if job.archive else 100
        if job.max_tweets:
            requests[endpoint] = pages_for(job.max_tweets, page)
            est.tweets = job.max_tweets
        else:
            requests[endpoint] = 1
            est.exact = False
            notes.append(f"search volume is unknown before searching: each request returns up to {page} tweets; "
                         "give max_tweets for an estimate")
    elif job.spider == "users":
        ids, names = len(set(job.user_ids)), len({n.lower() for n in job.screen_names})
        if ids:
            requests["/2/users" if job.api == "2" else "/users/lookup"] = math.ceil(ids / 100)
        if names:
            key = "/2/users/by" if job.api == "2" else "/users/lookup"
            requests[key] = requests.get(key, 0) + math.ceil(names / 100)
        est.users = ids + names
    elif job.spider == "tweets":
        requests["/2/tweets" if job.api == "2" else "/statuses/lookup"] = math.ceil(len(set(job.tweet_ids)) / 100)
        est.tweets = len(set(job.tweet_ids))
    if volume is None:
        _cost(job, est, requests)
    elif job.screen_names:
        est.resources[pricing.USER] = est.resources.get(pricing.USER, 0) + len({n.lower() for n in job.screen_names})
    for endpoint, n in requests.items():
        lanes, per_window = capacity(endpoint, credentials, limits)
        est.endpoints.append(plan_endpoint(endpoint, n, lanes, per_window, window))
        if per_window <= 0:
            notes.append(f"no configured credential may call {endpoint}")
    est.notes = notes
    if not est.basis:
        est.basis = "exact: from the look-up's counts" if est.exact else "estimated: see the notes"
    return est


def _cost(job: JobArgs, est: Estimate, requests: dict[str, int]) -> None:
    """Dollars by the billing rule (tweetform/api/pricing.py); network crawls are costed in :func:`_network`."""
    from tweetform.cost.rule import unit_cost

    if job.screen_names and job.spider not in ("users",):  # the names are looked up first: User reads
        est.resources[pricing.USER] = len({n.lower() for n in job.screen_names})
    if job.spider in ("timeline", "search", "tweets"):
        kind, n, params = pricing.POST, est.tweets or 0, V2_TWEET_PARAMS
    elif job.spider == "users":
        kind, n, params = pricing.USER, est.users, V2_USER_PARAMS
    else:
        return
    est.resources[kind] = n
    if job.api == "2":  # what the expansions tweetform asks for may add, at most
        endpoint = {"timeline": "/2/users/:id/tweets", "search": "/2/tweets/search/recent", "tweets": "/2/tweets"}.get(job.spider, "/2/users")
        est.includes_usd = n * max(0.0, unit_cost(endpoint, params) - pricing.price(kind))


def _listed(level1: float, depth: int, cap: int | None, expanded: int, mean: float, overlap: float) -> float:
    """Accounts billed over every level when each account below level 1 lists ``mean`` of them (``overlap``: the
    share of levels >= 2 not billed already that day); level 1's ``level1`` are exact."""
    total, frontier = level1, level1
    for _ in range(2, depth + 1):
        users = frontier if cap is None else min(frontier, max(0, cap - expanded))
        if users < 0.5:
            break
        expanded += round(users)
        frontier = users * mean
        total += users * mean * overlap
    return total


def _network(job: JobArgs, entries: list[Counts | None], requests: dict[str, int], est: Estimate, notes: list[str],
             sample: list[Counts] | None) -> None:
    page = network_page_size(job)
    cap = job.max_users

    def listed(c: Counts | None) -> int | None:
        if c is None or not c.exists or c.protected:
            return None  # one request, answered with an error
        return c.friends if job.spider == "friends" else c.followers

    level1 = entries[:cap] if cap else entries
    sizes = [listed(c) for c in level1]
    pages = sum(1 if n is None else pages_for(n, page) for n in sizes)
    # deeper levels look like the sample of level 2 (accounts in a seed's list), else like the seeds
    basis = sample if sample else [c for c in entries]
    lists = [listed(c) for c in basis]
    known = [n for n in lists if n is not None]
    mean = sum(known) / len(lists) if lists else 0.0
    mean_pages = sum(1 if n is None else pages_for(n, page) for n in lists) / len(lists) if lists else 1.0
    levels = [len(level1)]
    expanded = len(level1)
    frontier = float(sum(n for n in sizes if n is not None))
    listed_per_level = [frontier]  # accounts billed per level (a Following/Followers read each)
    for _ in range(2, job.depth + 1):
        users = frontier if cap is None else min(frontier, max(0, cap - expanded))
        if users < 0.5:
            break
        est.exact = False
        levels.append(round(users))
        expanded += round(users)
        pages += round(users * mean_pages)
        frontier = users * mean
        listed_per_level.append(users * mean * LIST_OVERLAP)
    est.per_user_usd = mean * LIST_OVERLAP * pricing.price(pricing.FOLLOW)
    est.level_usd = [n * pricing.price(pricing.FOLLOW) for n in listed_per_level]
    est.resources[pricing.FOLLOW] = round(sum(listed_per_level))
    seeds = sum(1 for c in entries if c is not None)
    est.basis = f"level 1 exact: {seeds} seed(s) looked up, {round(listed_per_level[0]):,} accounts in their lists"
    if len(levels) > 1:
        source = f"a sample of {len(basis)} accounts of level 2" if sample else "the seeds themselves (no sample of level 2)"
        notes.append(f"levels 2..{len(levels)} extrapolated from {source}: on average {mean:,.0f} accounts listed, "
                     f"{mean_pages:.2f} pages each; lists overlap, so the real crawl is smaller")
        # the range: the sample mean give or take two standard errors, lists overlapping 0-25 % (measured: 13-18 %)
        values = [float(n or 0) for n in lists]
        spread = 2 * (sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1)) ** 0.5 / max(1, len(values)) ** 0.5
        ends = [_listed(listed_per_level[0], job.depth, cap, len(level1), m, overlap)
                for m, overlap in ((max(0.0, mean - spread), LIST_OVERLAP_LOW), (mean + spread, 1.0))]
        est.usd_range = (min(ends) * pricing.price(pricing.FOLLOW), max(ends) * pricing.price(pricing.FOLLOW))
        est.basis += (f"; levels 2..{len(levels)} extrapolated from {source} ({mean:,.1f} ± {spread:,.1f} accounts listed "
                      f"each, two standard errors), so it is a range")
    else:
        est.usd_range = (est.usd, est.usd)
    requests[network_endpoint(job)] = pages
    est.users, est.levels = expanded, levels


# --- counts from the API ----------------------------------------------------------------

#: seconds ``scrapy plan`` waits, by default, for a credential's quota to come back before it gives up
PLAN_WAIT = 60.0


class PlanSpend:
    """What the plan's own requests cost (the API bills them like any other): the billing rule of
    :mod:`tweetform.cost` applied to each answer, per app."""

    def __init__(self, credentials: list[Credential], prices: Mapping[str, float] | None = None) -> None:
        from tweetform.cost.ledger import CostLedger, DayOf
        from tweetform.cost.middleware import app_names

        self.ledger = CostLedger(prices)
        self.day_of = DayOf()
        self.apps = app_names(credentials)

    def charge(self, alias: str, endpoint: str, body: Any, date: bytes | None) -> None:
        from tweetform.cost.rule import resources

        self.ledger.charge("plan", self.apps.get(alias, alias), self.day_of(date), list(resources(endpoint, body)))

    @property
    def micro_usd(self) -> int:
        return self.ledger.total

    def text(self) -> str:
        """``$1.01 (101 resources, billed to demo-app-1)``."""
        n = sum(self.ledger.resources.values())
        apps = ", ".join(sorted(a for a, v in self.ledger.by_app.items() if v))
        return f"{dollars(self.ledger.total)}" + (f" ({n:,} resource(s), billed to {apps})" if n else "")


class ApiClient:
    """Signed GETs for plan's few look-ups: per endpoint, the first credential lane that may call it
    (user context first; app-only endpoints such as counts with a bearer token)."""

    def __init__(self, api_base: str, credentials: list[Credential], timeout: float = 30.0,
                 spend: PlanSpend | None = None) -> None:
        import requests

        if not credentials:
            raise PlanError("no API credentials configured (TWEETFORM_CREDENTIALS)")
        self.pool = CredentialPool(credentials)
        self.cred = credentials[0]
        self.base = api_base.rstrip("/")
        self.session = requests.Session()
        self.bearers: dict[str, str] = {}
        self.timeout = timeout
        self.requests = 0
        self.spend = spend
        self.max_wait = PLAN_WAIT  # seconds the plan may wait for a lane's quota to come back (--wait)
        self.waited = 0.0

    def _auth(self, url: str, cred: Credential, kind: str) -> str:
        from tweetform.api.auth import basic_header, bearer_header, oauth1_header

        if kind == "user":
            return oauth1_header(cred, "GET", url)
        if cred.bearer_token:
            return bearer_header(cred.bearer_token)
        if cred.alias not in self.bearers:
            resp = self.session.post(f"{self.base}/oauth2/token", data={"grant_type": "client_credentials"},
                                     headers={"Authorization": basic_header(cred)}, timeout=self.timeout)
            if resp.status_code != 200:
                raise PlanError(f"credential {cred.alias!r}: bearer token refused (HTTP {resp.status_code})")
            self.bearers[cred.alias] = resp.json()["access_token"]
        return bearer_header(self.bearers[cred.alias])

    def get(self, endpoint: str, params: dict[str, Any], path_id: Any = None) -> tuple[int, Any]:
        """The answer of the first lane that gives one. A lane whose quota is used up (429) or whose
        credential is refused is passed over for the next; when none is left, the plan waits for the
        soonest reset if it comes within ``max_wait`` seconds, else says in one line why it cannot
        estimate now (:class:`PlanError` with the exit status that says so): never an answer that
        failed, from which an estimate would be extrapolated from nothing."""
        from tweetform.api.errors import is_usage_capped

        lanes = self.pool.lanes(ENDPOINTS[endpoint])
        if not lanes:
            raise PlanError(missing_auth(ENDPOINTS[endpoint], self.pool.credentials) or f"no credential may call {endpoint}")
        while True:
            resets: list[float] = []
            refused: list[str] = []
            for lane in lanes:
                status, body, headers = self._send(endpoint, params, path_id, lane)
                if status == 429 and is_usage_capped(body):
                    raise PlanError(f"the API refuses {endpoint} to credential {lane.alias!r}: its app is out of credits or over "
                                    "its monthly cap (usage-capped); the estimate is not possible until it has credits again",
                                    exitcodes.BUDGET_EXHAUSTED)
                if status == 429:
                    resets.append(_reset_of(headers))
                elif status in (401, 403) and _rejected(status, body, endpoint):
                    refused.append(lane.alias)
                else:
                    return status, body
            if not resets:
                raise PlanError(f"every credential that may call {endpoint} was refused ({', '.join(refused)}): "
                                "the estimate is not possible with these credentials", exitcodes.NO_CREDENTIALS)
            wait = max(0.0, min(resets) - time.time()) + 1.0
            if self.waited + wait > self.max_wait:
                at = time.strftime("%H:%M:%S UTC", time.gmtime(min(resets)))
                raise PlanError(f"the estimate is not possible now: every credential's quota for {endpoint} is used up "
                                f"until {at} ({human(wait)}; scrapy plan waits up to {human(self.max_wait)}, --wait SECONDS "
                                "for longer); run it again then", exitcodes.QUOTA_USED_UP)
            time.sleep(wait)
            self.waited += wait

    def _send(self, endpoint: str, params: dict[str, Any], path_id: Any, lane: Any) -> tuple[int, Any, Any]:
        import requests

        cred = self.pool.get(lane.alias)
        assert cred is not None
        self.cred = cred
        url = ENDPOINTS[endpoint].url(self.base, params, path_id)
        try:
            resp = self.session.get(url, headers={"Authorization": self._auth(url, cred, lane.kind)}, timeout=self.timeout)
        except requests.RequestException as exc:
            raise PlanError(f"{endpoint} failed: {type(exc).__name__}; the estimate is not possible now",
                            exitcodes.UNREACHABLE) from None
        self.requests += 1
        try:
            body = resp.json()
        except ValueError:
            return resp.status_code, None, resp.headers
        if resp.status_code == 200 and self.spend is not None:
            self.spend.charge(cred.alias, endpoint, body, resp.headers.get("Date", "").encode("latin-1") or None)
        return resp.status_code, body, resp.headers


def _reset_of(headers: Any) -> float:
    """When a 429's window resets (epoch seconds; a minute from now when the answer does not say)."""
    try:
        return float(headers.get("x-rate-limit-reset"))
    except (TypeError, ValueError):
        return time.time() + 60.0


def _rejected(status: int, body: Any, endpoint: str) -> bool:
    """A 401/403 that refuses the credential itself (bad, revoked, or the wrong context for the endpoint),
    not an account the plan looked at."""
    from tweetform.api import errors

    return errors.classify(status, body, "2" if endpoint.startswith("/2/") else "1.1").kind in (errors.AUTH, errors.FORBIDDEN)


def lookup_counts(api_base: str, credentials: list[Credential], job: JobArgs, *, timeout: float = 30.0,
                  spend: PlanSpend | None = None, wait: float = PLAN_WAIT) -> tuple[dict[int, Counts], int]:
    """The seeds' counts from a users look-up (100 per request) with the first
    credential; returns the counts and the number of requests made."""
    client = ApiClient(api_base, credentials, timeout, spend)
    client.max_wait = wait
    found: dict[int, Counts] = {}
    batches: list[tuple[str, dict[str, str]]] = []
    ids = list(dict.fromkeys(job.user_ids))
    names = list(dict.fromkeys(n.lower() for n in job.screen_names))
    for i in range(0, len(ids), 100):
        chunk = ",".join(map(str, ids[i : i + 100]))
        batches.append(("/2/users", {"ids": chunk}) if job.api == "2" else ("/users/lookup", {"user_id": chunk}))
    for i in range(0, len(names), 100):
        chunk = ",".join(names[i : i + 100])
        batches.append(("/2/users/by", {"usernames": chunk}) if job.api == "2" else ("/users/lookup", {"screen_name": chunk}))
    for endpoint, params in batches:
        if job.api == "2":
            params["user.fields"] = "public_metrics,protected"
        else:
            params["include_entities"] = "false"
        status, body = client.get(endpoint, params)
        if status == 404 and job.api == "1.1":
            continue  # none of them exists
        if status != 200:
            raise PlanError(f"users look-up answered HTTP {status} (credential {client.cred.alias!r}): the estimate is not "
                            "possible now", exitcodes.UNREACHABLE if status >= 500 else exitcodes.ERROR)
        users = (body.get("data") or []) if isinstance(body, dict) else (body or [])
        for u in users:
            c = _counts_of(u)
            found[c.user_id] = c
    return found, client.requests


def sample_level2(api_base: str, credentials: list[Credential], job: JobArgs, counts: Mapping[int, Counts],
                  size: int = 100, *, timeout: float = 30.0, spend: PlanSpend | None = None,
                  wait: float = PLAN_WAIT) -> tuple[list[Counts], int]:
    """Counts of up to ``size`` accounts of level 2: one page, with user objects, of the
    list of the first seed that has one (one request of that list endpoint's quota)."""
    seed = next((c for c in counts.values() if c.exists and not c.protected
                 and (c.friends if job.spider == "friends" else c.followers) > 0), None)
    if seed is None or job.depth < 2:
        return [], 0
    client = ApiClient(api_base, credentials, timeout, spend)
    client.max_wait = wait
    if job.api == "2":
        endpoint = "/2/users/:id/following" if job.spider == "friends" else "/2/users/:id/followers"
        status, body = client.get(endpoint, {"max_results": max(1, min(size, 1000)), "user.fields": "public_metrics,protected"},
                                  seed.user_id)
        users = (body.get("data") or []) if isinstance(body, dict) else []
    else:
        status, body = client.get(f"/{job.spider}/list", {"user_id": seed.user_id, "count": max(1, min(size, 200)),
                                                          "skip_status": "true", "include_user_entities": "false"})
        users = (body.get("users") or []) if isinstance(body, dict) else []
    if status != 200:  # never extrapolate from a sample that failed
        raise PlanError(f"the sample of level 2 (one page of {seed.user_id}'s list) answered HTTP {status}: the estimate "
                        "is not possible now", exitcodes.UNREACHABLE if status >= 500 else exitcodes.ERROR)
    return [_counts_of(u) for u in users if isinstance(u, dict)], client.requests


def _counts_of(user: dict[str, Any]) -> Counts:
    if "public_metrics" in user or "username" in user:
        m = user.get("public_metrics") or {}
        return Counts(int(user["id"]), user.get("username", ""), int(m.get("followers_count", 0)),
                      int(m.get("following_count", 0)), int(m.get("tweet_count", 0)), bool(user.get("protected")),
                      likes=int(m.get("like_count", 0)), listed=int(m.get("listed_count", 0)))
    return Counts(int(user["id_str"]), user.get("screen_name", ""), int(user.get("followers_count", 0)),
                  int(user.get("friends_count", 0)), int(user.get("statuses_count", 0)), bool(user.get("protected")))


def estimate_from_dict(data: Mapping[str, Any]) -> Estimate:
    """An :class:`Estimate` back from :meth:`Estimate.as_dict` (jobs keep their plan in Redis)."""
    endpoints = [EndpointPlan(**e) for e in data.get("endpoints", [])]
    return Estimate(data["spider"], data["api"], float(data.get("window") or 900.0), endpoints, int(data.get("users") or 0),
                    data.get("tweets"), bool(data.get("exact", True)), list(data.get("notes") or []), list(data.get("levels") or []),
                    dict(data.get("resources") or {}), float(data.get("includes_usd") or 0.0), list(data.get("level_usd") or []),
                    float(data.get("per_user_usd") or 0.0), str(data.get("basis") or ""),
                    tuple(data["usd_range"]) if data.get("usd_range") else None,  # type: ignore[arg-type]
                    tuple(data["requests_range"]) if data.get("requests_range") else None)  # type: ignore[arg-type]


def plan_job(settings: Any, job: JobArgs, sample: int = 100, wait: float = PLAN_WAIT
             ) -> tuple[Estimate, dict[int, Counts], int, int, list, PlanSpend]:
    """Look the seeds up (and sample level 2 of deep network crawls), then estimate:
    (estimate, seed counts, look-up requests, sample requests, sample, what those requests cost).
    ``wait``: seconds to wait, at most, for a credential's quota when every lane's is used up.
    X's APIs; :func:`tweetform.planning_bluesky.plan_any` plans a job of either API."""
    credentials = load_credentials(settings)
    if not credentials:
        raise PlanError("no API credentials configured: set TWEETFORM_CREDENTIALS (see settings_local.py.example)")
    spend = PlanSpend(credentials, settings.getdict("TWEETFORM_PRICES_USD") or None)
    counts: dict[int, Counts] = {}
    lookups = 0
    base = settings.get("TWEETFORM_API_BASE")
    if job.spider not in ("users", "tweets", "search"):
        counts, lookups = lookup_counts(base, credentials, job, spend=spend, wait=wait)
    sample_users: list = []
    sampled = 0
    if job.spider in ("friends", "followers") and job.depth > 1 and sample > 0:
        sample_users, sampled = sample_level2(base, credentials, job, counts, sample, spend=spend, wait=wait)
    volume = None
    if needs_volume(job):  # what the counts endpoints, the seed tweets or lists say (a few cents)
        from tweetform.spiders.paged import PagedSpider
        from scrapy.spiderloader import get_spider_loader

        spidercls = get_spider_loader(settings).load(job.spider)
        client = ApiClient(base, credentials, spend=spend)
        client.max_wait = wait
        volume = measure(client, job, spidercls if issubclass(spidercls, PagedSpider) else None, counts, sample)
        lookups += volume.plan_requests
        if volume.plan_requests:
            volume.notes.append(f"this plan made {volume.plan_requests} request(s) to count (counts cost $0.005-0.010 each, "
                                "look-ups a Post read per tweet)")
        if volume.sampled:
            volume.notes.append(f"includes (authors, mentioned users, referenced tweets) estimated from a sample page of up to "
                                f"{sample} posts, billed now and not again to a crawl the same UTC day (--sample 0: none)")
    est = estimate(job, credentials, counts, limits=settings.getdict("TWEETFORM_RATE_LIMITS"),
                   window=settings.getfloat("TWEETFORM_RATE_WINDOW"), sample=sample_users or None, volume=volume)
    return est, counts, lookups, sampled, sample_users, spend
