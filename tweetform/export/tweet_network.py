"""The user network of a tweet bucket: who retweeted, quoted, replied to and mentioned whom.

twarc's network plugin's job, for any bucket of tweets (timelines, search, mentions,
conversations, quotes, stream, cascades), in either API version. Each tweet of the
bucket (``data``; the ``includes`` only resolve authors and names) gives edges from
its author to:

* ``retweet``: the author of the tweet it retweets;
* ``quote``: the author of the tweet it quotes;
* ``reply``: the user it replies to (``in_reply_to_user_id``);
* ``mention``: each user it mentions (a retweet's mentions are its original's words,
  not the retweeter's: a retweet gives its ``retweet`` edge only).

An edge is one per ``(source, target, kind)``: ``weight`` is the number of distinct tweets
giving it, ``first_time``/``last_time`` the oldest and newest of their times and ``tweet_ids``
their ids (space-separated, ascending). Self-loops (a reply to oneself) are kept. A tweet
read twice (two jobs, two buckets) counts once. A retweet or quote whose original is not in
the page's ``includes`` (deleted, or asked without expansions) names no author: it is
counted in :attr:`TweetNetwork.unresolved`, not guessed. Retweeters pages (``retweeted_by``,
``cascade``) are retweets too: an edge retweeter → the post's author (no time, no tweet id), once
per retweeter and post even when the retweet was also read as a tweet.

Bluesky buckets (``-a api=bluesky``) give the same network with DIDs as user ids and ``at://``
URIs as tweet ids: a repost is a ``retweet`` edge (``--edges repost`` is the same kind), a quote's,
a reply's and a mention's targets are the DIDs of the quoted post's and parent's URIs and of the
mention facets (:func:`tweetform.export.bluesky.reactions`); ``getRepostedBy`` pages are retweeters pages.
"""

from __future__ import annotations

import csv
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import networkx as nx

from tweetform.export import bluesky
from tweetform.export.files import open_text_output
from tweetform.export.graph import nodes_path, user_attributes, write_formats, write_node_table
from tweetform.export.tweets import tweet_id, tweets_of_page
from tweetform.items import PROVENANCE

KINDS = ("retweet", "quote", "reply", "mention")
ALIASES = {"repost": "retweet"}  # Bluesky's word for a retweet
RETWEETERS = ("/2/tweets/:id/retweeted_by", bluesky.REPOSTED_BY)
#: the node table's columns (besides Id and Label) and the edge table's
NODE_COLUMNS = ("screen_name", "name", "followers_count", "friends_count", "statuses_count", "protected")
EDGE_COLUMNS = ("Source", "Target", "Weight", "Kind", "first_time", "last_time", "tweet_ids")


def parse_kinds(raw: str | None) -> tuple[str, ...]:
    """``--edges retweet,reply`` → the kinds (``repost`` is ``retweet``); None or empty: all four.
    Raises ValueError naming a bad one."""
    if not raw:
        return KINDS
    named = (k.strip().lower() for k in raw.split(",") if k.strip())
    kinds = tuple(dict.fromkeys(ALIASES.get(k, k) for k in named))
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise ValueError(f"--edges takes {', '.join(KINDS)} (comma-separated; repost for retweet), not {bad[0] if bad else raw!r}")
    return kinds


def utc_time(value: Any) -> str | None:
    """A v2 (``2024-05-01T12:00:00.000Z``) or v1.1 (``Wed May 01 12:00:00 +0000 2024``) time as the v2 form."""
    if not isinstance(value, str):
        return None
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z", "%a %b %d %H:%M:%S %z %Y"):
        try:
            dt = datetime.strptime(value.replace("Z", "+0000"), fmt)
        except ValueError:
            continue
        return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
    return None


def _sid(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def reactions_v2(tweet: dict[str, Any]) -> tuple[str | None, list[tuple[str, str | None]], list[dict[str, Any]]]:
    """``(author id, [(kind, target user id or None)], user objects met)`` of a flattened v2 tweet."""
    users = [u for u in (tweet.get("author"), tweet.get("in_reply_to_user")) if isinstance(u, dict) and u]
    found: list[tuple[str, str | None]] = []
    retweet = False
    for ref in tweet.get("referenced_tweets") or []:
        kind = {"retweeted": "retweet", "quoted": "quote"}.get(ref.get("type"))
        if kind is None:
            continue
        retweet |= kind == "retweet"
        found.append((kind, _sid(ref.get("author_id"))))
        if isinstance(ref.get("author"), dict) and ref["author"]:
            users.append(ref["author"])
    if tweet.get("in_reply_to_user_id"):
        found.append(("reply", str(tweet["in_reply_to_user_id"])))
    if not retweet:
        for mention in (tweet.get("entities") or {}).get("mentions") or []:
            found.append(("mention", _sid(mention.get("id"))))
            if mention.get("id") and mention.get("username"):
                users.append(mention)
    return _sid(tweet.get("author_id")), found, users


def reactions_v1(tweet: dict[str, Any]) -> tuple[str | None, list[tuple[str, str | None]], list[dict[str, Any]]]:
    """The same for a v1.1 tweet (originals embedded as ``retweeted_status`` / ``quoted_status``)."""
    users = [tweet["user"]] if isinstance(tweet.get("user"), dict) else []
    found: list[tuple[str, str | None]] = []
    retweeted = tweet.get("retweeted_status") if isinstance(tweet.get("retweeted_status"), dict) else None
    quoted = tweet.get("quoted_status") if isinstance(tweet.get("quoted_status"), dict) else None
    if retweeted is not None:
        user = retweeted.get("user") or {}
        found.append(("retweet", _sid(user.get("id_str") or user.get("id"))))
        users.append(user)
    if quoted is not None or tweet.get("quoted_status_id_str"):
        user = (quoted or {}).get("user") or {}
        found.append(("quote", _sid(user.get("id_str") or user.get("id"))))
        users.append(user)
    if tweet.get("in_reply_to_user_id_str") or tweet.get("in_reply_to_user_id"):
        found.append(("reply", str(tweet.get("in_reply_to_user_id_str") or tweet["in_reply_to_user_id"])))
    if retweeted is None:
        for mention in (tweet.get("entities") or {}).get("user_mentions") or []:
            found.append(("mention", _sid(mention.get("id_str") or mention.get("id"))))
    user = tweet.get("user") or {}
    return _sid(user.get("id_str") or user.get("id")), found, [u for u in users if u]


class TweetNetwork:
    """Add pages in any order; :meth:`graph` is the user network of the tweets read so far."""

    def __init__(self, kinds: Iterable[str] = KINDS) -> None:
        self.kinds = tuple(kinds)
        self.tweets: set[str] = set()  # ids of the tweets read (each counted once)
        self.duplicates = 0
        self.unresolved = 0  # retweets and quotes whose original's author no page names
        self.edges: dict[tuple[str, str, str], list[tuple[str, str]]] = {}  # (source, target, kind) -> [(time, tweet id)]
        self.users: dict[str, dict[str, Any]] = {}
        self.authors: dict[str, str] = {}  # post id -> author id, from every tweet read
        self.retweeted: set[tuple[str, str]] = set()  # (retweeter, original) of the retweets read as tweets
        self.retweeters: set[tuple[str, str]] = set()  # (retweeter, post) of retweeted_by pages

    def add_pages(self, pages: Iterable[dict[str, Any]]) -> "TweetNetwork":
        for page in pages:
            self.add_page(page)
        return self

    def add_page(self, page: dict[str, Any]) -> None:
        prov = page.get(PROVENANCE) if isinstance(page.get(PROVENANCE), dict) else {}
        if prov.get("endpoint") in RETWEETERS and prov.get("bucket") != "errors":
            # retweeters of a post (retweeted_by, cascade): retweets the bucket holds as users, not tweets
            if bluesky.is_bluesky(page):  # the post is the page's uri, its author the DID the uri starts with
                post, users = str(page.get("uri")), bluesky.profiles_of_page(page)
                if bluesky.did_of_uri(post):
                    self.authors[post] = str(bluesky.did_of_uri(post))
            else:
                post, users = str(prov.get("post") or prov.get("key")), page.get("data") or []
            for user in users:
                found = user_attributes(user) if isinstance(user, dict) else None
                if found is not None:
                    self.users.setdefault(found[0], {}).update(found[1])
                    self.retweeters.add((found[0], post))
            return
        if prov.get("list") == "retweet_times":  # a cascade's retweeter timeline (to time a retweet the retweeters page has)
            return
        for included in (page.get("includes") or {}).get("tweets") or []:
            if isinstance(included, dict) and included.get("id") and included.get("author_id"):
                self.authors[str(included["id"])] = str(included["author_id"])
        for version, tweet in tweets_of_page(page):
            self.add_tweet(version, tweet)

    def add_tweet(self, version: str, tweet: dict[str, Any]) -> None:
        tid = tweet_id(version, tweet)
        if tid is None:
            return
        if tid in self.tweets:
            self.duplicates += 1
            return
        self.tweets.add(tid)
        reactions = {"2": reactions_v2, bluesky.BLUESKY: bluesky.reactions}.get(version, reactions_v1)
        author, found, users = reactions(tweet)
        if author is not None:
            self.authors[tid] = author
            for ref in tweet.get("referenced_tweets") or []:
                if ref.get("type") == "retweeted" and ref.get("id"):
                    self.retweeted.add((author, str(ref["id"])))
            if version == bluesky.BLUESKY and bluesky.repost_reason(tweet) is not None:
                original = bluesky.post_of(tweet)
                self.retweeted.add((author, str(original.get("uri"))))
                if (original.get("author") or {}).get("did"):
                    self.authors[str(original.get("uri"))] = str(original["author"]["did"])
        for user in users:
            got = user_attributes(user)
            if got is not None:
                self.users.setdefault(got[0], {}).update(got[1])
        if author is None:
            return
        when = utc_time(bluesky.entry_time(tweet) if version == bluesky.BLUESKY else tweet.get("created_at")) or ""
        for kind, target in dict.fromkeys(found):  # a user mentioned twice in one tweet: one mention
            if kind not in self.kinds:
                continue
            if target is None:
                self.unresolved += 1
                continue
            self.edges.setdefault((author, target, kind), []).append((when, tid))

    def graph(self) -> nx.MultiDiGraph:
        """Nodes: user ids (``label`` and ``screen_name`` the username where a page names it);
        edges keyed by their kind, with ``kind``, ``weight``, ``first_time``, ``last_time``, ``tweet_ids``."""
        graph = nx.MultiDiGraph()
        edges = {k: list(v) for k, v in self.edges.items()}
        if "retweet" in self.kinds:  # a retweet read both as a tweet and in a retweeters list counts once
            for user, post in sorted(self.retweeters - self.retweeted):
                if post in self.authors:
                    edges.setdefault((user, self.authors[post], "retweet"), []).append(("", ""))
        for (source, target, kind), found in sorted(edges.items()):
            times = sorted(t for t, _ in found if t)
            graph.add_edge(source, target, key=kind, kind=kind, weight=len(found),
                           first_time=times[0] if times else "", last_time=times[-1] if times else "",
                           tweet_ids=" ".join(sorted({tid for _, tid in found if tid}, key=_id_order)))
        for node in graph.nodes:
            graph.nodes[node].update(self.users.get(node, {}))
        return graph


def _id_order(tid: str) -> tuple[int, int, str]:
    """Tweet ids ascending as numbers; Bluesky's at:// URIs (their TID record keys sort by time) as text."""
    return (0, int(tid), "") if tid.isdigit() else (1, 0, tid)


def write_network(graph: nx.MultiDiGraph, path: Path, fmt: str) -> list[Path]:
    """csv: ``Source,Target,Weight,Kind,first_time,last_time,tweet_ids`` and the node table beside it;
    graphml and gexf: networkx's writers (a multigraph: one edge per kind between two users)."""
    return write_formats(graph, path, fmt, _write_edge_table)


def _write_edge_table(graph: nx.MultiDiGraph, path: Path) -> list[Path]:
    with open_text_output(path) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(EDGE_COLUMNS)
        for source, target, data in graph.edges(data=True):
            writer.writerow((source, target, data["weight"], data["kind"], data["first_time"], data["last_time"],
                             data["tweet_ids"]))
    return [path, write_node_table(graph, path, NODE_COLUMNS)]


def read_csv_network(path: Path) -> nx.MultiDiGraph:
    """Read back what :func:`write_network` wrote as CSV."""
    graph = nx.MultiDiGraph()
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            graph.add_edge(row["Source"], row["Target"], key=row["Kind"], kind=row["Kind"], weight=int(row["Weight"]),
                           first_time=row["first_time"], last_time=row["last_time"], tweet_ids=row["tweet_ids"])
    table = nodes_path(path)
    if table.exists():
        with open(table, encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                row["label"] = row.pop("Label")
                graph.add_node(row.pop("Id"), **{k: v for k, v in row.items() if v != ""})
    return graph
