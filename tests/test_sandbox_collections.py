"""The sandbox serves the collection endpoints of issue 17 (quotes, retweeters, likes,
mentions, lists, counts, conversations), checked as an API client would: plain
``requests`` (OAuth 1.0a by ``requests_oauthlib``, bearer tokens) and tweepy's real
``Client``, each answer compared with ``/_sandbox/truth/…``.
"""

from __future__ import annotations

from tweetform.api import limits, pricing
from tweetform.api.endpoints import ENDPOINTS

COLLECTIONS = [
    "/2/tweets/:id/quote_tweets", "/2/tweets/:id/retweeted_by", "/2/tweets/:id/liking_users",
    "/2/users/:id/liked_tweets", "/2/users/:id/mentions", "/2/lists/:id", "/2/lists/:id/members",
    "/2/lists/:id/followers", "/2/lists/:id/tweets", "/2/users/:id/list_memberships",
    "/2/users/:id/owned_lists", "/2/users/:id/followed_lists", "/2/tweets/counts/recent", "/2/tweets/counts/all",
]


def test_every_collection_endpoint_has_a_row_in_each_table() -> None:
    """One endpoint table, one limits table, one price table: each new endpoint is a row of all three,
    and who may call it (user context only, app-only) agrees between the endpoint and limits tables."""
    for key in COLLECTIONS:
        endpoint = ENDPOINTS[key]
        assert key in limits.LIMITS, key
        assert (key in pricing.DATA_KIND) != (key in pricing.REQUEST_KIND), key
        user, app = limits.limits_of(key)
        assert (app is None) == endpoint.user_only and (user is None) == endpoint.app_only, key
        assert endpoint.paging == ("none" if key == "/2/lists/:id" else "token"), key
    assert pricing.price(pricing.LIST) == 0.005 and pricing.price(pricing.LIKE) == 0.001
    assert pricing.price(pricing.REQUEST_KIND["/2/tweets/counts/recent"]) == 0.005
    assert pricing.price(pricing.REQUEST_KIND["/2/tweets/counts/all"]) == 0.010
