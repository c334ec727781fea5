"""The billing rule in code (tweetform's side; the sandbox's ledger is separate code).

:func:`resources` lists what a page returned, as ``(kind, ids)`` groups: ``data``
at the endpoint's kind (:data:`tweetform.api.pricing.DATA_KIND`), ``includes.users``
as User reads, ``includes.tweets`` as Post reads, media free. :func:`max_cost`
bounds what a request can cost before it is sent (the budget reserves it).
"""

from __future__ import annotations

import random
from typing import Any, Iterator, Mapping

from tweetform.api.endpoints import page_size_param
from tweetform.api.pricing import DATA_KIND, FOLLOW, INCLUDES_KIND, POST, REQUEST_KIND, USER, price

#: v2 expansions and the kind of what each adds to ``includes`` (the others are free: media, places, polls)
EXPANSION_KIND: dict[str, str] = {
    "author_id": USER,
    "in_reply_to_user_id": USER,
    "entities.mentions.username": USER,
    "referenced_tweets.id.author_id": USER,
    "referenced_tweets.id": POST,
    "pinned_tweet_id": POST,
    "most_recent_tweet_id": POST,
}
#: page size when the request does not say (the API's defaults)
DEFAULT_PAGE: dict[str, int] = {
    "/2/users/:id/following": 100, "/2/users/:id/followers": 100, "/2/users/:id/tweets": 10,
    "/2/tweets/search/recent": 10, "/2/tweets/search/all": 10, "/friends/ids": 5000, "/followers/ids": 5000,
    "/friends/list": 20, "/followers/list": 20, "/statuses/user_timeline": 20, "/search/tweets": 15, "/users/show/:id": 1,
}
#: look-ups: the parameter that lists what is asked for
LOOKUP_PARAMS = ("ids", "usernames", "user_id", "screen_name", "id")
#: v1.1 endpoints whose body is a JSON array (tweetform keeps it under ``page``)
ARRAY_BODIES = frozenset({"/statuses/user_timeline", "/users/lookup", "/statuses/lookup"})


def _ids(objects: Any) -> list[str]:
    if not isinstance(objects, list):
        return []
    try:  # the common shapes in one comprehension each: v2 objects (string ids), v1.1 objects, ids lists
        first = objects[0] if objects else None
        if isinstance(first, dict):
            return [o["id_str"] for o in objects] if "id_str" in first else [o["id"] for o in objects]
        if isinstance(first, str):
            return objects
    except (KeyError, TypeError):
        pass
    out = []
    for o in objects:
        if isinstance(o, dict):
            value = o.get("id_str") or o.get("id")
            if value is not None:
                out.append(value if isinstance(value, str) else str(value))
        elif o is not None:  # friends/ids: bare ids
            out.append(o if isinstance(o, str) else str(o))
    return out


def resources(endpoint: str, body: Any) -> Iterator[tuple[str, list[str]]]:
    """``(kind, ids)`` of everything billable a page returned (``body``: the parsed answer;
    a v1.1 array may come wrapped as ``{"page": [...]}``, as tweetform's items hold it)."""
    if endpoint in REQUEST_KIND:  # counts: each answer with data once, never deduplicated (a random id)
        if isinstance(body, dict) and body.get("data"):
            yield REQUEST_KIND[endpoint], [str(random.getrandbits(62))]
        return
    kind = DATA_KIND.get(endpoint)
    if kind is None:
        return
    if isinstance(body, dict) and endpoint in ARRAY_BODIES and isinstance(body.get("page"), list):
        body = body["page"]
    if isinstance(body, list):  # v1.1 arrays: timelines, look-ups
        yield kind, _ids(body)
        return
    if not isinstance(body, dict):
        return
    if endpoint.startswith("/2/"):
        data = body.get("data")
        yield kind, _ids(data if isinstance(data, list) else [data] if isinstance(data, dict) else [])
        includes = body.get("includes")
        if isinstance(includes, dict):
            for name, inc_kind in INCLUDES_KIND.items():
                if name in includes:
                    yield inc_kind, _ids(includes[name])
        return
    for member in ("ids", "users", "statuses"):  # follow lists, search
        if member in body:
            yield kind, _ids(body[member])
            return
    if isinstance(body.get("id"), dict):  # statuses/lookup with map=true: missing ones are null
        yield kind, _ids([t for t in body["id"].values() if t])
    elif "id_str" in body:  # users/show
        yield kind, _ids([body])


def page_size(endpoint: str, params: Mapping[str, Any]) -> int:
    """How many ``data`` objects a request can return at most."""
    name = page_size_param(params)
    if name is not None:
        return int(params[name])
    for name in LOOKUP_PARAMS:
        value = params.get(name)
        if value not in (None, ""):
            return len(str(value).split(","))
    return DEFAULT_PAGE.get(endpoint, 100)


def unit_cost(endpoint: str, params: Mapping[str, Any], prices: Mapping[str, float] | None = None) -> float:
    """The most one ``data`` object (with what its expansions may add) can cost, in dollars."""
    prices = dict(prices) if prices else None
    cost = price(DATA_KIND.get(endpoint, ""), prices)
    expansions = params.get("expansions")
    if expansions and endpoint.startswith("/2/"):
        # includes are distinct per answer: at most one object per data object and expansion
        cost += sum(price(EXPANSION_KIND[e], prices) for e in str(expansions).split(",") if e in EXPANSION_KIND)
    return cost


def max_cost(endpoint: str, params: Mapping[str, Any], prices: Mapping[str, float] | None = None) -> float:
    """The most a request can cost, in dollars: page size × (price of its kind + its expansions')."""
    if endpoint in REQUEST_KIND:
        return price(REQUEST_KIND[endpoint], prices)
    if endpoint not in DATA_KIND:
        return 0.0
    return page_size(endpoint, params) * unit_cost(endpoint, params, prices)


__all__ = ["resources", "max_cost", "page_size", "unit_cost", "EXPANSION_KIND", "FOLLOW", "POST", "USER"]
