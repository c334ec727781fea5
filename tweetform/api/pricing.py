"""What the API charges under pay-per-use (since February 2026): one price table.

The billing rule (README, section "Cost"), the same for the sandbox's ledger and
for tweetform's own accounting — which are separate code, so each checks the other:

* ``data`` is billed at the endpoint's kind (:data:`DATA_KIND`);
* ``includes.users`` as User reads, ``includes.tweets`` as Post reads; media,
  places and polls are free;
* a resource is identified by (app, kind, id, UTC day): the same account in two
  follow lists of one app on one day is billed once, and again the next day;
* failed answers (errors, no data) are never billed;
* the counts endpoints are billed per request (:data:`REQUEST_KIND`), not per
  resource and not deduplicated: each successful answer with ``data`` costs once.

Not modelled: "Owned Reads" ($0.001 when ``:id`` is the app owner's own account).
"""

from __future__ import annotations

POST, USER, FOLLOW = "post", "user", "follow"
LIST, LIKE = "list", "like"
COUNTS_RECENT, COUNTS_ALL = "counts_recent", "counts_all"

#: US dollars per resource returned, by kind
PRICES_USD: dict[str, float] = {
    POST: 0.005,  # Post (tweet) read: timelines, search, /2/tweets
    USER: 0.010,  # User read: /2/users, /2/users/by
    FOLLOW: 0.010,  # each account in a following/followers list
    LIST: 0.005,  # List read: /2/lists/:id, list_memberships, owned_lists, followed_lists
    LIKE: 0.001,  # Like read: each account of liking_users (unverified in the docs: shared/twitter-api.md)
    COUNTS_RECENT: 0.005,  # per request of /2/tweets/counts/recent
    COUNTS_ALL: 0.010,  # per request of /2/tweets/counts/all
}

#: endpoint key -> kind of the resources in its ``data`` (v1.1: its ids, users or statuses)
DATA_KIND: dict[str, str] = {
    "/2/users/:id/following": FOLLOW,
    "/2/users/:id/followers": FOLLOW,
    "/2/users/:id/tweets": POST,
    "/2/tweets/search/recent": POST,
    "/2/tweets/search/all": POST,
    "/2/users": USER,
    "/2/users/by": USER,
    "/2/tweets": POST,
    "/2/tweets/:id/quote_tweets": POST,
    "/2/tweets/:id/retweeted_by": USER,
    "/2/tweets/:id/liking_users": LIKE,
    "/2/users/:id/liked_tweets": POST,
    "/2/users/:id/mentions": POST,
    "/2/lists/:id": LIST,
    "/2/lists/:id/members": USER,
    "/2/lists/:id/followers": USER,
    "/2/lists/:id/tweets": POST,
    "/2/users/:id/list_memberships": LIST,
    "/2/users/:id/owned_lists": LIST,
    "/2/users/:id/followed_lists": LIST,
    "/2/tweets/search/stream": POST,  # each post delivered (one per line)
    "/friends/ids": FOLLOW,
    "/followers/ids": FOLLOW,
    "/friends/list": FOLLOW,
    "/followers/list": FOLLOW,
    "/statuses/user_timeline": POST,
    "/search/tweets": POST,
    "/statuses/lookup": POST,
    "/users/lookup": USER,
    "/users/show/:id": USER,
}

#: endpoint key -> kind billed once per successful request (its ``data`` is not billed per item)
REQUEST_KIND: dict[str, str] = {
    "/2/tweets/counts/recent": COUNTS_RECENT,
    "/2/tweets/counts/all": COUNTS_ALL,
}

#: ``includes`` members and the kind they are billed at (others are free)
INCLUDES_KIND: dict[str, str] = {"users": USER, "tweets": POST}


def price(kind: str, prices: dict[str, float] | None = None) -> float:
    """Dollars for one resource of ``kind`` (0 for a kind that is not billed)."""
    return (prices or PRICES_USD).get(kind, 0.0)
