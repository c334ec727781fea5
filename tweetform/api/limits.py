"""The API's rate limits: one table, read by the sandbox (what it enforces) and by
``scrapy plan`` (what it estimates), so the two can never disagree.

v2 follows the single limits table the API documents since January 2026
(``shared/twitter-api.md``, section "2026"); v1.1 keeps its documented limits.
Values are requests per 15-minute window as ``(user context, app-only)``;
``None`` means that auth kind may not call the endpoint.
"""

from __future__ import annotations

WINDOW_SECONDS = 900.0

LIMITS: dict[str, tuple[int | None, int | None]] = {
    # v1.1 (documented limits, unchanged)
    "/friends/ids": (15, 15),
    "/followers/ids": (15, 15),
    "/friends/list": (15, 15),
    "/followers/list": (15, 15),
    "/statuses/user_timeline": (900, 1500),
    "/users/lookup": (900, 300),
    "/users/show/:id": (900, 900),
    "/search/tweets": (180, 450),
    "/statuses/lookup": (900, 300),
    "/application/rate_limit_status": (180, 180),
    # v2, the 2026 table
    "/2/users/:id/following": (300, 300),
    "/2/users/:id/followers": (300, 300),
    "/2/users/:id/tweets": (900, 10_000),
    "/2/tweets/search/recent": (300, 450),
    "/2/tweets/search/all": (None, 300),  # and 1 request per second (PER_SECOND)
    "/2/users": (900, 300),
    "/2/users/by": (900, 300),
    "/2/tweets": (5_000, 3_500),
    "/2/usage/tweets": (None, 50),
    # v2 collections (issue 17); user-context only: liking_users, liked_tweets; app-only: counts
    "/2/tweets/:id/quote_tweets": (75, 75),
    "/2/tweets/:id/retweeted_by": (75, 75),
    "/2/tweets/:id/liking_users": (75, None),
    "/2/users/:id/liked_tweets": (75, None),
    "/2/users/:id/mentions": (300, 450),
    "/2/lists/:id": (75, 75),
    "/2/lists/:id/members": (900, 900),
    "/2/lists/:id/followers": (180, 180),  # not in the 2026 table; 180 in tweepy's recording
    "/2/lists/:id/tweets": (900, 900),
    "/2/users/:id/list_memberships": (75, 75),
    "/2/users/:id/owned_lists": (15, 15),
    "/2/users/:id/followed_lists": (15, 15),  # not in the 2026 table; 15 in tweepy's recording
    "/2/tweets/counts/recent": (None, 300),
    "/2/tweets/counts/all": (None, 300),
    "/2/tweets/search/stream": (None, 50),  # connections; one open at a time per app
    "/2/tweets/search/stream/rules": (None, 450),  # GET
    "/2/tweets/search/stream/rules:post": (None, 100),  # POST (add, delete)
}
#: an endpoint the table does not list
UNLISTED_LIMIT = 15
#: endpoints with an extra one-request-per-second limit
PER_SECOND: frozenset[str] = frozenset({"/2/tweets/search/all"})


def limits_of(endpoint: str) -> tuple[int | None, int | None]:
    """``(user, app)`` requests per window for an endpoint key."""
    return LIMITS.get(endpoint, (UNLISTED_LIMIT, UNLISTED_LIMIT))
