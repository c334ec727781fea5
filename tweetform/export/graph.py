"""The follow network of a crawl as a graph (networkx), from pages of either API version.

An edge ``a → b`` means *a follows b*. Pages of the friends endpoints
(``friends/ids``, ``friends/list``, ``/2/users/:id/following``) give edges from
the page's source user to every id in it; pages of the followers endpoints
give edges from every id to the source user. The source user and the endpoint
come from each page's ``__tweetform`` provenance, so friends and followers
buckets, ids and user objects, v1.1 and v2 can be mixed: an edge found twice
is one edge.

User objects — in ``friends/list`` / ``followers/list`` pages, v2 pages
crawled with ``data_type=users``, and look-up pages (the ``users`` bucket) —
give node attributes: ``label`` and ``screen_name``, ``name``,
``followers_count``, ``friends_count``, ``statuses_count``, ``protected``.
Nodes whose own list was crawled have ``crawled=True``; accounts recorded in
the ``errors`` bucket (when given) carry its ``reason`` as ``error``.

Bluesky pages (``-a api=bluesky``: ``getFollows``, ``getFollowers``, ``getProfiles``,
``getRepostedBy``, ``getLikes``) give the same graph with DIDs as node ids and the
handle as ``screen_name`` and ``label`` (:mod:`tweetform.export.bluesky`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import networkx as nx

from tweetform.export import bluesky
from tweetform.export.files import open_text_output
from tweetform.items import PROVENANCE

FRIENDS = "friends"
FOLLOWERS = "followers"
LIST_ENDPOINTS = {
    "/friends/ids": FRIENDS,
    "/friends/list": FRIENDS,
    "/2/users/:id/following": FRIENDS,
    "/followers/ids": FOLLOWERS,
    "/followers/list": FOLLOWERS,
    "/2/users/:id/followers": FOLLOWERS,
    bluesky.FOLLOWS: FRIENDS,
    bluesky.FOLLOWERS: FOLLOWERS,
}
USER_ENDPOINTS = frozenset({"/users/lookup", "/2/users", "/2/users/by", "/users/show/:id", bluesky.PROFILES})
#: pages of users who did something to the page's tweet (its key; Bluesky: the page's post ``uri``):
#: edges user → the tweet's author
ENGAGEMENT_ENDPOINTS = {"/2/tweets/:id/retweeted_by": "retweeted", "/2/tweets/:id/liking_users": "liked",
                        bluesky.REPOSTED_BY: "retweeted", bluesky.LIKES: "liked"}
#: pages of a list's users (the list id is the key): edges user → ``list:<id>``
LIST_USER_ENDPOINTS = {"/2/lists/:id/members": "member", "/2/lists/:id/followers": "follower"}
#: pages whose tweets tell who wrote them (the authors engagement edges point to)
AUTHOR_ENDPOINTS = frozenset({"/2/tweets", "/2/users/:id/tweets", "/2/tweets/search/recent", "/2/tweets/search/all",
                              "/2/tweets/:id/quote_tweets", "/2/users/:id/liked_tweets", "/2/users/:id/mentions",
                              "/2/lists/:id/tweets"})
FORMATS = ("csv", "graphml", "gexf")
#: node attributes, in the order the CSV node table lists them
ATTRIBUTES = ("screen_name", "name", "followers_count", "friends_count", "statuses_count", "protected", "crawled", "error")


def user_attributes(user: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """``(id, attributes)`` of a v1.1 or v2 user object or a Bluesky profile (only the attributes it has)."""
    if "did" in user:
        return bluesky.profile_attributes(user)
    uid = user.get("id_str") or user.get("id")
    if uid is None:
        return None
    attrs: dict[str, Any] = {}
    name = user.get("screen_name") or user.get("username")
    if name:
        attrs["screen_name"] = str(name)
        attrs["label"] = str(name)
    if user.get("name") is not None:
        attrs["name"] = str(user["name"])
    metrics = user.get("public_metrics") or {}
    for ours, v1, v2 in (("followers_count", "followers_count", "followers_count"),
                         ("friends_count", "friends_count", "following_count"),
                         ("statuses_count", "statuses_count", "tweet_count")):
        value = user.get(v1, metrics.get(v2))
        if isinstance(value, int):
            attrs[ours] = value
    if isinstance(user.get("protected"), bool):
        attrs["protected"] = user["protected"]
    return str(uid), attrs


def _users_in(page: dict[str, Any]) -> list[dict[str, Any]]:
    if bluesky.is_bluesky(page):
        return bluesky.profiles_of_page(page)
    for key in ("users", "data", "page"):
        found = page.get(key)
        if isinstance(found, list):
            return [u for u in found if isinstance(u, dict)]
        if isinstance(found, dict) and key == "data":
            return [found]
    return []


def _ids_in(page: dict[str, Any]) -> list[str]:
    if "ids" in page:
        return [str(i) for i in page["ids"]]
    return [uid for uid, _ in filter(None, map(user_attributes, _users_in(page)))]


@dataclass
class GraphSummary:
    nodes: int
    edges: int
    with_attributes: int  # a screen name at least
    with_counts: int  # follower / friend / tweet counts too
    list_pages: int
    user_pages: int
    skipped_pages: int


class GraphBuilder:
    """Add pages in any order; :attr:`graph` is the follow network so far."""

    def __init__(self) -> None:
        self._graph = nx.DiGraph()
        self.errors: dict[str, tuple[str, bool]] = {}  # account -> (reason, from a list request)
        self.list_pages = 0
        self.user_pages = 0
        self.skipped_pages = 0
        self.authors: dict[str, str] = {}  # tweet id -> author id, from any tweet page read
        self.engagements: dict[tuple[str, str], str] = {}  # (user, tweet id) -> "retweeted" | "liked"
        self.unresolved = 0  # engagements whose tweet's author no page read names

    @property
    def graph(self) -> nx.DiGraph:
        """The network so far, with the errors bucket's reasons on the accounts they concern:
        every account whose own list failed, and accounts of the network a look-up missed.
        Retweets and likes are edges user → the tweet's author once some page read names the author
        (the retweeted_by and liking_users spiders look their seed tweets up for that)."""
        self.unresolved = 0
        for (user, tweet), relation in self.engagements.items():
            author = self.authors.get(tweet)
            if author is None:
                self.unresolved += 1
                continue
            if not self._graph.has_edge(user, author):
                self._graph.add_edge(user, author, relation=relation)
        for target, (reason, listed) in self.errors.items():
            if listed or target in self._graph:
                self._graph.add_node(target)
                self._graph.nodes[target]["error"] = reason
                if reason == "protected":
                    self._graph.nodes[target]["protected"] = True
        return self._graph

    def add_pages(self, pages: Iterable[dict[str, Any]]) -> "GraphBuilder":
        for page in pages:
            self.add_page(page)
        return self

    def add_page(self, page: dict[str, Any]) -> None:
        prov = page.get(PROVENANCE) if isinstance(page.get(PROVENANCE), dict) else {}
        if prov.get("bucket") == "errors" or "reason" in page:
            self._add_error(page)
            return
        endpoint = prov.get("endpoint")
        if endpoint in AUTHOR_ENDPOINTS:
            self._add_authors(page)
        if endpoint in ENGAGEMENT_ENDPOINTS or endpoint in LIST_USER_ENDPOINTS:
            post = page.get("uri") if bluesky.is_bluesky(page) else None
            if isinstance(post, str) and bluesky.did_of_uri(post):
                self.authors[post] = str(bluesky.did_of_uri(post))  # a post's author is in its at:// URI
            self._add_list_users(page, endpoint, post or str(prov.get("key")))
            return
        direction = LIST_ENDPOINTS.get(endpoint)
        users = _users_in(page)
        if direction is None and endpoint not in USER_ENDPOINTS:
            self.skipped_pages += 1  # tweets, searches: not part of the follow network
            return
        for user in users:
            self._add_user(user)
        if direction is None:
            self.user_pages += 1
            return
        self.list_pages += 1
        source = str(prov.get("source_user_id") or prov.get("key"))
        self._graph.add_node(source)
        self._graph.nodes[source]["crawled"] = True
        ids = _ids_in(page)
        if direction == FRIENDS:
            self._graph.add_edges_from((source, other) for other in ids)
        else:
            self._graph.add_edges_from((other, source) for other in ids)

    def _add_authors(self, page: dict[str, Any]) -> None:
        tweets = list(page.get("data")) if isinstance(page.get("data"), list) else []  # a copy: the page is not ours
        tweets += (page.get("includes") or {}).get("tweets") or []
        for tweet in tweets:
            if isinstance(tweet, dict) and tweet.get("id") and tweet.get("author_id"):
                self.authors[str(tweet["id"])] = str(tweet["author_id"])

    def _add_list_users(self, page: dict[str, Any], endpoint: str, key: str) -> None:
        """retweeted_by / liking_users (key: the tweet) and list members / followers (key: the list)."""
        self.list_pages += 1
        users = _users_in(page)
        for user in users:
            self._add_user(user)
        ids = [uid for uid, _ in filter(None, map(user_attributes, users))]
        if endpoint in ENGAGEMENT_ENDPOINTS:
            for uid in ids:
                self.engagements.setdefault((uid, key), ENGAGEMENT_ENDPOINTS[endpoint])
            return
        node = f"list:{key}"
        self._graph.add_node(node, label=node, kind="list")
        # an account both member and follower of a list stays one edge, with the relation seen first
        self._graph.add_edges_from((uid, node, {"relation": LIST_USER_ENDPOINTS[endpoint]}) for uid in ids
                                   if not self._graph.has_edge(uid, node))

    def _add_user(self, user: dict[str, Any]) -> None:
        found = user_attributes(user)
        if found is None:
            return
        uid, attrs = found
        self._graph.add_node(uid)
        self._graph.nodes[uid].update(attrs)

    def _add_error(self, record: dict[str, Any]) -> None:
        """An account the crawl could not expand (errors bucket): known, but without edges."""
        target = str(record.get("id") or "")
        if not (target.isdigit() or target.startswith("did:")) or not record.get("reason"):
            return
        prov = record.get(PROVENANCE) or {}
        endpoint = prov.get("endpoint")
        if endpoint not in LIST_ENDPOINTS and endpoint not in USER_ENDPOINTS:
            return  # a tweet or search error
        self.errors[target] = (str(record["reason"]), endpoint in LIST_ENDPOINTS)

    def summary(self) -> GraphSummary:
        graph = self.graph
        with_attrs = sum(1 for _, data in graph.nodes(data=True) if "screen_name" in data)
        with_counts = sum(1 for _, data in graph.nodes(data=True) if "followers_count" in data)
        return GraphSummary(graph.number_of_nodes(), graph.number_of_edges(), with_attrs, with_counts,
                            self.list_pages, self.user_pages, self.skipped_pages)


def nodes_path(path: Path) -> Path:
    """The node table beside an edge-list CSV: ``net.csv`` → ``net.nodes.csv``."""
    name = path.name
    for suffix in (".csv.gz", ".csv"):
        if name.endswith(suffix):
            return path.with_name(name[: -len(suffix)] + ".nodes" + suffix)
    return path.with_name(name + ".nodes.csv")


def write_formats(graph: nx.Graph, path: Path, fmt: str, write_csv: Callable[[Any, Path], list[Path]]) -> list[Path]:
    """Write any of the exports' graphs: graphml and gexf with networkx's writers, csv with the
    graph's own ``write_csv`` (its edge columns and node table); returns the files written."""
    if fmt == "graphml":
        nx.write_graphml(graph, path)
        return [path]
    if fmt == "gexf":
        nx.write_gexf(graph, path)
        return [path]
    if fmt != "csv":
        raise ValueError(f"unknown graph format {fmt!r}; use one of {', '.join(FORMATS)}")
    return write_csv(graph, path)


def write_graph(graph: nx.DiGraph, path: Path, fmt: str) -> list[Path]:
    """Write the follow graph; returns the files written. ``csv``: Gephi's edge list
    (``Source,Target``) and, beside it, a node table (``Id,Label,…``)."""
    return write_formats(graph, path, fmt, _write_edge_list)


def _write_edge_list(graph: nx.DiGraph, path: Path) -> list[Path]:
    with open_text_output(path) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(("Source", "Target"))
        writer.writerows(graph.edges())
    return [path, write_node_table(graph, path, ATTRIBUTES)]


def write_node_table(graph: nx.Graph, path: Path, columns: Iterable[str]) -> Path:
    """The CSV node table beside an edge list ``path`` (Gephi's Id, Label and the given attributes)."""
    columns = tuple(columns)
    table = nodes_path(path)
    with open_text_output(table) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(("Id", "Label", *columns))
        for node, data in graph.nodes(data=True):
            writer.writerow((node, data.get("label", ""), *("" if data.get(a) is None else data[a] for a in columns)))
    return table


def read_csv_graph(path: Path) -> nx.DiGraph:
    """Read back what :func:`write_graph` wrote as CSV (edges, and the node table if present)."""
    graph = nx.DiGraph()
    with open(path, encoding="utf-8", newline="") as fh:
        rows = csv.reader(fh)
        next(rows, None)
        graph.add_edges_from((a, b) for a, b in rows)
    table = nodes_path(path)
    if table.exists():
        with open(table, encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                graph.add_node(row.pop("Id"), **{k: v for k, v in row.items() if v != ""})
    return graph
