"""Tweets out of pages of either API version: one row per tweet, the author expanded.

v2 pages are *flattened* exactly as the twarc2 tools flatten them
(``twarc.expansions.flatten``): each tweet of ``data`` gets its ``author``,
``in_reply_to_user``, mentioned users, media, polls, places and referenced
tweets inlined from the page's ``includes``; the page's provenance rides along
as ``__tweetform`` (twarc's ``__twarc``). v1.1 tweets already embed their
author (``user``); they are written as the API sent them, plus ``__tweetform``.

The CSV has one set of columns for both versions, named and filled like
``twarc2 csv`` (twarc-csv) fills them, retweets merged with their original
(text, entities and counts of the retweeted tweet), lists JSON-encoded,
newlines in text written as ``\\n``: see :data:`COLUMNS`. Tweets are de-duplicated
by id, the first copy kept (as ``twarc2 csv`` does).

Bluesky posts (``-a api=bluesky`` pages of author feeds, searches, look-ups, threads and
quotes) go in the same columns where Bluesky has the field (:func:`tweetform.export.bluesky.row`):
the id is the post's ``at://`` URI, the author's id its DID and username its handle; JSON
lines are the entries as the AppView sent them (an author feed's items, the others' post
views), plus ``__tweetform``.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, TextIO

from tweetform.export import bluesky
from tweetform.items import PROVENANCE

FORMATS = ("jsonl", "csv")
TWEET_ENDPOINTS = frozenset({
    "/2/users/:id/tweets", "/2/tweets/search/recent", "/2/tweets/search/all", "/2/tweets",
    "/2/tweets/:id/quote_tweets", "/2/users/:id/liked_tweets", "/2/users/:id/mentions", "/2/lists/:id/tweets",
    "/statuses/user_timeline", "/search/tweets", "/statuses/lookup",
    "/2/tweets/search/stream",  # the stream bucket: one post a line
    *bluesky.POST_ENDPOINTS,
})
#: twarc-csv's names for the core columns, then tweetform's provenance
COLUMNS = (
    "id", "conversation_id", "referenced_tweets.replied_to.id", "referenced_tweets.retweeted.id",
    "referenced_tweets.quoted.id", "author_id", "in_reply_to_user_id", "in_reply_to_username",
    "retweeted_user_id", "retweeted_username", "quoted_user_id", "quoted_username", "created_at", "text",
    "lang", "source", "public_metrics.impression_count", "public_metrics.reply_count",
    "public_metrics.retweet_count", "public_metrics.quote_count", "public_metrics.like_count",
    "possibly_sensitive", "entities.hashtags", "entities.mentions", "entities.urls",
    "author.id", "author.created_at", "author.username", "author.name", "author.description",
    "author.location", "author.protected", "author.verified", "author.public_metrics.followers_count",
    "author.public_metrics.following_count", "author.public_metrics.listed_count",
    "author.public_metrics.tweet_count",
    "__tweetform.api_version", "__tweetform.retrieved_at", "__tweetform.url", "__tweetform.bucket",
    "__tweetform.key",
)
_TAG = re.compile(r"<[^>]*>")


# --- v2: twarc's flattening ------------------------------------------------------------

def _index(page: dict[str, Any], kind: str, key: str = "id") -> dict[str, Any]:
    return {item[key]: item for item in (page.get("includes") or {}).get(kind) or [] if key in item}


def flatten_v2(page: dict[str, Any]) -> list[dict[str, Any]]:
    """The tweets of one v2 page with their includes inlined, as ``twarc.expansions.flatten`` does."""
    users: defaultdict[str, Any] = defaultdict(dict, {**_index(page, "users"), **_index(page, "users", "username")})
    media: defaultdict[str, Any] = defaultdict(dict, _index(page, "media", "media_key"))
    polls: defaultdict[str, Any] = defaultdict(dict, _index(page, "polls"))
    places: defaultdict[str, Any] = defaultdict(dict, _index(page, "places"))
    tweets: defaultdict[str, Any] = defaultdict(dict, _index(page, "tweets"))

    def expand(payload: Any) -> Any:
        if isinstance(payload, list):
            return [expand(item) for item in payload]
        if not isinstance(payload, dict):
            return payload
        for key, value in payload.items():
            payload[key] = expand(value)
        if "author_id" in payload:
            payload["author"] = users[payload["author_id"]]
        if "in_reply_to_user_id" in payload:
            payload["in_reply_to_user"] = users[payload["in_reply_to_user_id"]]
        if "media_keys" in payload:
            payload["media"] = [media[k] for k in payload["media_keys"]]
        if payload.get("poll_ids"):
            payload["poll"] = polls[payload["poll_ids"][-1]]
        if isinstance(payload.get("geo"), dict) and "place_id" in payload["geo"]:
            payload["geo"] = {**payload["geo"], **places[payload["geo"]["place_id"]]}
        if "mentions" in payload:
            payload["mentions"] = [{**m, **users[m["username"]]} for m in payload["mentions"]]
        if "referenced_tweets" in payload:
            payload["referenced_tweets"] = [{**r, **tweets[r["id"]]} for r in payload["referenced_tweets"]]
        if "pinned_tweet_id" in payload:
            payload["pinned_tweet"] = tweets[payload["pinned_tweet_id"]]
        return payload

    for tid, included in list(tweets.items()):
        tweets[tid] = expand(included)
    data = page.get("data")
    found = expand(data) if isinstance(data, list) else [expand(data)] if isinstance(data, dict) else []
    prov = page.get(PROVENANCE)
    if prov is not None:
        for tweet in found:
            tweet[PROVENANCE] = prov
    return found


# --- pages -> tweets ---------------------------------------------------------------------

def tweets_of_page(page: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(api version, tweet)`` for each tweet of a page of a tweet endpoint; nothing for other pages."""
    prov = page.get(PROVENANCE) if isinstance(page.get(PROVENANCE), dict) else {}
    endpoint = prov.get("endpoint")
    if prov.get("bucket") == "errors" or endpoint not in TWEET_ENDPOINTS:
        return
    page = json.loads(json.dumps(page))  # flattening edits in place; pages may be shared
    if prov.get("api_version") == bluesky.BLUESKY:
        for entry in bluesky.posts_of_page(page):
            entry[PROVENANCE] = prov
            yield bluesky.BLUESKY, entry
        return
    if prov.get("api_version") == "2" or endpoint.startswith("/2/"):
        for tweet in flatten_v2(page):
            yield "2", tweet
        return
    if isinstance(page.get("page"), list):
        found = page["page"]
    elif isinstance(page.get("statuses"), list):
        found = page["statuses"]
    elif isinstance(page.get("id"), dict):  # statuses/lookup with map=true
        found = [t for t in page["id"].values() if t]
    else:
        found = []
    for tweet in found:
        if isinstance(tweet, dict):
            tweet[PROVENANCE] = prov
            yield "1.1", tweet


def _v1_date(value: Any) -> Any:
    """v1.1's ``Wed Oct 10 20:19:24 +0000 2018`` as v2's ``2018-10-10T20:19:24.000Z``."""
    if not isinstance(value, str):
        return value
    try:
        dt = datetime.strptime(value, "%a %b %d %H:%M:%S %z %Y")
    except ValueError:
        return value
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _ref(tweet: dict[str, Any], kind: str) -> dict[str, Any] | None:
    refs = [r for r in tweet.get("referenced_tweets") or [] if r.get("type") == kind]
    return refs[-1] if refs else None


def _entities_v2(entities: Any) -> dict[str, Any]:
    entities = entities or {}
    out: dict[str, Any] = {}
    if "hashtags" in entities:
        out["hashtags"] = ["#" + h["tag"] for h in entities["hashtags"]]
    if "mentions" in entities:
        out["mentions"] = ["@" + m["username"] for m in entities["mentions"]]
    if "urls" in entities:
        out["urls"] = [u.get("display_url") if "media_key" in u else u.get("expanded_url") for u in entities["urls"]]
    return out


def row_v2(tweet: dict[str, Any]) -> dict[str, Any]:
    """A flattened v2 tweet as twarc-csv's core columns (``merge_retweets``: a retweet
    carries its original's text, entities and counts)."""
    row: dict[str, Any] = {k: tweet.get(k) for k in ("id", "conversation_id", "author_id", "in_reply_to_user_id",
                                                     "created_at", "lang", "source", "possibly_sensitive")}
    text, entities, metrics = tweet.get("text"), tweet.get("entities"), tweet.get("public_metrics")
    for kind in ("replied_to", "retweeted", "quoted"):
        ref = _ref(tweet, kind)
        row[f"referenced_tweets.{kind}.id"] = ref.get("id") if ref else None
    reply = _ref(tweet, "replied_to")
    if reply and "username" in (reply.get("author") or {}):
        row["in_reply_to_username"] = reply["author"]["username"]
    retweet = _ref(tweet, "retweeted")
    if retweet and "author_id" in retweet:
        row["retweeted_user_id"] = retweet["author_id"]
        row["retweeted_username"] = (retweet.get("author") or {}).get("username")
    if retweet:
        text = retweet.get("text", text)
        entities = retweet.get("entities", entities)
        metrics = retweet.get("public_metrics", metrics)
    quote = _ref(tweet, "quoted")
    if quote and "author_id" in quote:
        row["quoted_user_id"] = quote["author_id"]
        row["quoted_username"] = (quote.get("author") or {}).get("username")
    row["text"] = text
    for name, value in (metrics or {}).items():
        row[f"public_metrics.{name}"] = value
    for name, value in _entities_v2(entities).items():
        row[f"entities.{name}"] = value
    author = tweet.get("author") or {}
    for name in ("id", "created_at", "username", "name", "description", "location", "protected", "verified"):
        row[f"author.{name}"] = author.get(name)
    for name, value in (author.get("public_metrics") or {}).items():
        row[f"author.public_metrics.{name}"] = value
    return row


def row_v1(tweet: dict[str, Any]) -> dict[str, Any]:
    """A v1.1 tweet in the same columns (the v2 names for what v1.1 calls otherwise)."""
    user = tweet.get("user") or {}
    retweeted = tweet.get("retweeted_status") if isinstance(tweet.get("retweeted_status"), dict) else None
    quoted = tweet.get("quoted_status") if isinstance(tweet.get("quoted_status"), dict) else None
    original = retweeted or tweet
    entities = original.get("entities") or {}
    if not any(entities.get(k) for k in ("hashtags", "user_mentions", "urls", "symbols", "media")):
        # v2 leaves out an empty entities object, and twarc-csv then keeps the retweet's own
        entities = tweet.get("entities") or {}
    source = tweet.get("source")
    row: dict[str, Any] = {
        "id": tweet.get("id_str") or (str(tweet["id"]) if "id" in tweet else None),
        "referenced_tweets.replied_to.id": tweet.get("in_reply_to_status_id_str"),
        "referenced_tweets.retweeted.id": retweeted.get("id_str") if retweeted else None,
        "referenced_tweets.quoted.id": tweet.get("quoted_status_id_str") or (quoted or {}).get("id_str"),
        "author_id": user.get("id_str"),
        "in_reply_to_user_id": tweet.get("in_reply_to_user_id_str"),
        "in_reply_to_username": tweet.get("in_reply_to_screen_name"),
        "retweeted_user_id": (retweeted.get("user") or {}).get("id_str") if retweeted else None,
        "retweeted_username": (retweeted.get("user") or {}).get("screen_name") if retweeted else None,
        "quoted_user_id": (quoted.get("user") or {}).get("id_str") if quoted else None,
        "quoted_username": (quoted.get("user") or {}).get("screen_name") if quoted else None,
        "created_at": _v1_date(tweet.get("created_at")),
        "text": original.get("full_text", original.get("text")),
        "lang": tweet.get("lang"),
        "source": _TAG.sub("", source) if isinstance(source, str) else source,
        "public_metrics.reply_count": original.get("reply_count"),
        "public_metrics.retweet_count": original.get("retweet_count"),
        "public_metrics.quote_count": original.get("quote_count"),
        "public_metrics.like_count": original.get("favorite_count"),
        "possibly_sensitive": tweet.get("possibly_sensitive"),
        "entities.hashtags": ["#" + h["text"] for h in entities.get("hashtags") or []] or None,
        "entities.mentions": ["@" + m["screen_name"] for m in entities.get("user_mentions") or []] or None,
        "entities.urls": [u.get("expanded_url") for u in entities.get("urls") or []] or None,
        "author.id": user.get("id_str"),
        "author.created_at": _v1_date(user.get("created_at")),
        "author.username": user.get("screen_name"),
        "author.name": user.get("name"),
        "author.description": user.get("description"),
        "author.location": user.get("location"),
        "author.protected": user.get("protected"),
        "author.verified": user.get("verified"),
        "author.public_metrics.followers_count": user.get("followers_count"),
        "author.public_metrics.following_count": user.get("friends_count"),
        "author.public_metrics.listed_count": user.get("listed_count"),
        "author.public_metrics.tweet_count": user.get("statuses_count"),
    }
    return row


def tweet_id(version: str, tweet: dict[str, Any]) -> str | None:
    """A tweet's id (a Bluesky post's ``at://`` URI, or its repost's)."""
    if version == bluesky.BLUESKY:
        return bluesky.entry_id(tweet)
    tid = tweet.get("id_str") or tweet.get("id")
    return None if tid in (None, "") else str(tid)


def csv_row(version: str, tweet: dict[str, Any]) -> list[str]:
    row = row_v2(tweet) if version == "2" else bluesky.row(tweet) if version == bluesky.BLUESKY else row_v1(tweet)
    prov = tweet.get(PROVENANCE) or {}
    for name in ("api_version", "retrieved_at", "url", "bucket", "key"):
        row[f"__tweetform.{name}"] = prov.get(name)
    return [_cell(row.get(column)) for column in COLUMNS]


def _cell(value: Any) -> str:
    """twarc-csv's cell text: lists as JSON, newlines in text as ``\\n``, None as empty."""
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, str):
        return value.replace("\r", "").replace("\n", r"\n")
    return str(value)


# --- writing ----------------------------------------------------------------------------

class TweetWriter:
    """Writes each tweet once (by id), as JSON lines or CSV rows."""

    def __init__(self, out: TextIO, fmt: str) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown tweets format {fmt!r}; use one of {', '.join(FORMATS)}")
        self.out = out
        self.fmt = fmt
        self.seen: set[str] = set()
        self.written = 0
        self.duplicates = 0
        self.versions: set[str] = set()
        self.csv = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
        if self.csv is not None:
            self.csv.writerow(COLUMNS)

    def add_pages(self, pages: Iterable[dict[str, Any]]) -> "TweetWriter":
        for page in pages:
            for version, tweet in tweets_of_page(page):
                self.add(version, tweet)
        return self

    def add(self, version: str, tweet: dict[str, Any]) -> None:
        tid = tweet_id(version, tweet)
        if not tid:
            return
        if tid in self.seen:
            self.duplicates += 1
            return
        self.seen.add(tid)
        self.versions.add(version)
        if self.csv is not None:
            self.csv.writerow(csv_row(version, tweet))
        else:
            self.out.write(json.dumps(tweet, ensure_ascii=False, separators=(",", ":")) + "\n")
        self.written += 1
