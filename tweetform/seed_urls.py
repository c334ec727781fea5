"""Seed URLs as jobs: scrapy-redis's habit of pushing URLs into ``<spider>:start_urls``.

A plain API URL (``https://api.x.com/2/users/12/following``, v1.1 or v2, any endpoint a spider
calls, with or without a query) or scrapy-redis's JSON ``{"url": …, "meta": {…}}`` pushed into
``tweetform:<spider>:start_urls`` becomes a job message for that spider: its arguments come from
the URL's path and query (``meta`` may add job arguments such as ``depth`` or ``job``). The URL's
host is ignored — the job calls the configured ``TWEETFORM_API_BASE`` — and the job writes to
the spider's default bucket for those arguments (a bare v2 followers URL is ``data_type=ids``
into ``follower_ids``; with ``user.fields`` it is ``data_type=users`` into ``followers``).

Query parameters that only say how a page is asked for (page size, page token, fields,
expansions, formatting flags) are ignored: the job crawls the whole list the way tweetform asks
for it. Any other parameter, an unknown path or a URL for another spider is an ArgumentError
(the worker dead-letters the message with that reason).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tweetform.job import ArgumentError, message_arguments

#: parameters tweetform sets itself on every page it asks for: their value in a seed URL changes nothing
PRESENTATION = frozenset({
    "max_results", "count", "pagination_token", "next_token", "cursor", "expansions", "stringify_ids", "skip_status",
    "include_user_entities", "include_entities", "tweet_mode", "trim_user",
})
#: parameters whose value here is the one tweetform always sends
SAME_VALUE = {"include_rts": {"true", "1"}, "map": {"true"}, "result_type": {"recent"}}


@dataclass(frozen=True)
class SeedRoute:
    """One endpoint's URL shape and the job arguments it stands for."""

    spider: str
    version: str  # "1.1" or "2"
    path: str  # after the version, e.g. "users/{id}/following" or "friends/ids.json"
    path_id: str = ""  # the argument the path's {id} fills
    query: dict[str, str] = field(default_factory=dict)  # URL parameter -> argument
    fixed: dict[str, str] = field(default_factory=dict)  # arguments the endpoint itself means
    users_with_fields: bool = False  # v2 network lists: user.fields asked for means data_type=users

    def pattern(self) -> re.Pattern[str]:
        return re.compile("^(?:/.*)?/" + re.escape(self.version) + "/" + re.escape(self.path).replace(r"\{id\}", r"(\d+)") + "/?$")


V1_USER = {"user_id": "user_id", "screen_name": "screen_name"}
V2_TIMES = {"start_time": "start_time", "end_time": "end_time"}

ROUTES: tuple[SeedRoute, ...] = (
    # v1.1
    SeedRoute("friends", "1.1", "friends/ids.json", query=V1_USER, fixed={"data_type": "ids"}),
    SeedRoute("friends", "1.1", "friends/list.json", query=V1_USER, fixed={"data_type": "users"}),
    SeedRoute("followers", "1.1", "followers/ids.json", query=V1_USER, fixed={"data_type": "ids"}),
    SeedRoute("followers", "1.1", "followers/list.json", query=V1_USER, fixed={"data_type": "users"}),
    SeedRoute("timeline", "1.1", "statuses/user_timeline.json", query={**V1_USER, "since_id": "since_id"}),
    SeedRoute("users", "1.1", "users/lookup.json", query=V1_USER),
    SeedRoute("users", "1.1", "users/show.json", query=V1_USER),
    SeedRoute("tweets", "1.1", "statuses/lookup.json", query={"id": "tweet_id"}),
    SeedRoute("search", "1.1", "search/tweets.json", query={"q": "query", "lang": "lang", "geocode": "geocode"}),
    # v2
    SeedRoute("friends", "2", "users/{id}/following", "user_id", users_with_fields=True),
    SeedRoute("followers", "2", "users/{id}/followers", "user_id", users_with_fields=True),
    SeedRoute("timeline", "2", "users/{id}/tweets", "user_id", query={"since_id": "since_id", **V2_TIMES}),
    SeedRoute("users", "2", "users", query={"ids": "user_id"}),
    SeedRoute("users", "2", "users/by", query={"usernames": "screen_name"}),
    SeedRoute("tweets", "2", "tweets", query={"ids": "tweet_id"}),
    SeedRoute("conversation", "2", "tweets", query={"ids": "tweet_id"}),
    SeedRoute("search", "2", "tweets/search/recent", query={"query": "query", **V2_TIMES}),
    SeedRoute("search", "2", "tweets/search/all", query={"query": "query", **V2_TIMES}, fixed={"archive": "true"}),
    SeedRoute("counts", "2", "tweets/counts/recent", query={"query": "query", "granularity": "granularity", **V2_TIMES}),
    SeedRoute("counts", "2", "tweets/counts/all", query={"query": "query", "granularity": "granularity", **V2_TIMES},
              fixed={"archive": "true"}),
    SeedRoute("quotes", "2", "tweets/{id}/quote_tweets", "tweet_id"),
    SeedRoute("retweeted_by", "2", "tweets/{id}/retweeted_by", "tweet_id"),
    SeedRoute("liking_users", "2", "tweets/{id}/liking_users", "tweet_id"),
    SeedRoute("liked_tweets", "2", "users/{id}/liked_tweets", "user_id"),
    SeedRoute("mentions", "2", "users/{id}/mentions", "user_id", query={"since_id": "since_id", **V2_TIMES}),
    SeedRoute("lists", "2", "lists/{id}", "list_id", fixed={"relation": "lookup"}),
    SeedRoute("lists", "2", "lists/{id}/members", "list_id", fixed={"relation": "members"}),
    SeedRoute("lists", "2", "lists/{id}/followers", "list_id", fixed={"relation": "followers"}),
    SeedRoute("lists", "2", "lists/{id}/tweets", "list_id", fixed={"relation": "tweets"}),
    SeedRoute("lists", "2", "users/{id}/list_memberships", "user_id", fixed={"relation": "memberships"}),
    SeedRoute("lists", "2", "users/{id}/owned_lists", "user_id", fixed={"relation": "owned"}),
    SeedRoute("lists", "2", "users/{id}/followed_lists", "user_id", fixed={"relation": "followed"}),
)
_PATTERNS = [(route, route.pattern()) for route in ROUTES]


def is_seed_url(text: str) -> bool:
    return text.lstrip().lower().startswith(("http://", "https://"))


def _shown(url: str) -> str:
    """The URL for an error line: its path only (a query may hold anything)."""
    return urlsplit(url).path[:100] or url[:100]


def job_message(url: str, spider: str) -> dict[str, str]:
    """The job arguments a seed URL stands for, for ``spider``'s inbox (raises ArgumentError)."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.path:
        raise ArgumentError(f"seed URL {url[:100]!r} is not an http(s) API URL")
    matches = [(route, m) for route, m in ((r, p.match(parts.path)) for r, p in _PATTERNS) if m]
    if not matches:
        raise ArgumentError(f"seed URL path {_shown(url)!r} is not an endpoint of any tweetform spider")
    chosen = next(((r, m) for r, m in matches if r.spider == spider), None)
    if chosen is None:
        owners = " or ".join(dict.fromkeys(r.spider for r, _ in matches))
        raise ArgumentError(f"seed URL path {_shown(url)!r} is for spider {owners}, not {spider!r}")
    route, match = chosen
    args: dict[str, str] = {"api": route.version, **route.fixed}
    if route.path_id:
        args[route.path_id] = match.group(1)
    try:
        params = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query), max_num_fields=100)
    except ValueError:
        raise ArgumentError(f"seed URL {_shown(url)!r} has a query that cannot be read") from None
    for name, value in params:
        if name in route.query:
            if route.query[name] in args:
                raise ArgumentError(f"seed URL gives {name} more than once")
            args[route.query[name]] = value
        elif route.users_with_fields and name == "user.fields":
            args["data_type"] = "users"
        elif name in PRESENTATION or name.endswith(".fields") or value in SAME_VALUE.get(name, ()):
            continue
        else:
            raise ArgumentError(f"seed URL parameter {name[:40]!r} is not one tweetform can honour for {route.spider} "
                                f"(it takes {', '.join(sorted(route.query)) or 'none'} besides page size, tokens and fields)")
    return args


def scrapy_redis_message(message: dict[str, Any], spider: str) -> dict[str, str]:
    """scrapy-redis's JSON ``{"url": …, "meta": {…}, "method": "GET"}``: the URL's arguments plus
    ``meta``'s job arguments (``depth``, ``job``, ``max_users``, …; unknown names are refused later, by name)."""
    unknown = sorted(set(message) - {"url", "meta", "method"})
    if unknown:
        raise ArgumentError(f"seed URL message field {unknown[0][:40]!r} is not url, meta or method")
    url, meta = message.get("url"), message.get("meta") or {}
    if not isinstance(url, str) or not url.strip():
        raise ArgumentError("seed URL message needs a url string")
    if str(message.get("method") or "GET").upper() != "GET":
        raise ArgumentError("seed URL message method must be GET (the API's reads are)")
    if not isinstance(meta, dict):
        raise ArgumentError("seed URL message meta must be an object of job arguments")
    args = job_message(url, spider)
    extra = message_arguments(meta)
    clash = sorted(set(extra) & set(args))
    if clash:
        raise ArgumentError(f"meta gives {clash[0]!r}, which the seed URL already gives")
    return {**extra, **args}
