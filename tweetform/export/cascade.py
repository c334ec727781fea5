"""The tree of a ``cascade`` job: posts and users, edges from each reaction to its parent post.

Nodes are the bare post and user ids, ``kind`` ``post`` or ``user``, and ``depth`` (seeds 0; a
post or user first found in the lists of a level-``L`` post: ``L``). Posts carry ``author_id``,
``author`` (username), ``created_at``, ``text`` and the public metrics; users their ``label``
(username). Edges, keyed by kind: ``reply`` and ``quote`` from a post to the post it replies to or
quotes (``time``: the reacting post's), ``retweet`` and ``like`` from a user to the post. A
retweet's time is its retweet post's ``created_at`` when the job followed ``include=retweet_times``
(the retweeters' timelines), else empty: ``retweeted_by`` lists users only and search leaves
retweets out. A like's time is always empty: X's API gives no like time anywhere
(``liking_users`` and ``liked_tweets`` list users and posts, never when they were liked). A post whose parent was not collected (beyond the depth, deleted,
protected) keeps no edge to it: it is marked ``parent_missing`` (the parent's id), never dropped.
One graph holds every seed's tree.

Bluesky cascades (``api=bluesky``) make the same tree: post nodes are ``at://`` URIs and user nodes
DIDs (``author``/``label``: the handle; ``retweet_count`` is the post's ``repostCount``), edges
``reply``, ``quote``, ``repost`` and ``like`` (with the like's ``createdAt`` as its time).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Iterable

import networkx as nx

from tweetform.api import bluesky
from tweetform.export.bluesky import quoted_uri, reply_parent
from tweetform.export.files import open_text_output
from tweetform.export.graph import write_formats, write_node_table
from tweetform.export.tweet_network import utc_time
from tweetform.export.tweets import flatten_v2
from tweetform.items import PROVENANCE

FORMATS = ("graphml", "gexf", "csv", "jsonl")
USER_LISTS = {"/2/tweets/:id/retweeted_by": "retweet", "/2/tweets/:id/liking_users": "like"}
PARENT_KINDS = {"replied_to": "reply", "quoted": "quote"}
METRICS = ("retweet_count", "reply_count", "like_count", "quote_count")
#: Bluesky: the user lists (their member, the edge kind) and the post counters as the v2 metrics' names
BLUESKY_USER_LISTS = {"app.bsky.feed.getRepostedBy": ("repostedBy", "repost"), "app.bsky.feed.getLikes": ("likes", "like")}
BLUESKY_POST_LISTS = ("app.bsky.feed.getPosts", "app.bsky.feed.getQuotes")
BLUESKY_METRICS = {"repostCount": "retweet_count", "replyCount": "reply_count", "likeCount": "like_count",
                   "quoteCount": "quote_count"}
NODE_COLUMNS = ("kind", "depth", "author_id", "author", "created_at", "text", *METRICS, "parent_missing")


class CascadeBuilder:
    """Add a cascade job's pages in any order; :meth:`graph` is the tree."""

    def __init__(self) -> None:
        self.posts: dict[str, dict[str, Any]] = {}
        self.parents: dict[str, dict[str, str]] = {}  # post -> {kind: parent id}
        self.users: dict[str, dict[str, Any]] = {}
        self.engaged: dict[tuple[str, str, str], str] = {}  # (user, post, kind) -> time ("" when the API gives none)
        self.retweeted_at: dict[tuple[str, str], str] = {}  # X, include=retweet_times: (user, post) -> its retweet's time
        self.pages = 0

    def add_pages(self, pages: Iterable[dict[str, Any]]) -> "CascadeBuilder":
        for page in pages:
            self.add_page(page)
        return self

    def add_page(self, page: dict[str, Any]) -> None:
        prov = page.get(PROVENANCE) if isinstance(page.get(PROVENANCE), dict) else {}
        if prov.get("bucket") == "errors" or "reason" in page:
            return
        try:
            depth = 0 if prov.get("list") is None else int(prov.get("depth") or 1)
        except (TypeError, ValueError):
            return  # damaged provenance: not a page a cascade job wrote as it is
        self.pages += 1
        endpoint = prov.get("endpoint")
        if endpoint in USER_LISTS:
            for user in page.get("data") or []:
                if isinstance(user, dict) and user.get("id"):
                    uid = str(user["id"])
                    node = self.users.setdefault(uid, {"kind": "user", "depth": depth})
                    node["depth"] = min(node["depth"], depth)
                    if user.get("username"):
                        node["label"] = str(user["username"])
                    self.engaged[(uid, str(prov.get("post")), USER_LISTS[endpoint])] = ""
            return
        if prov.get("list") == "retweet_times":  # a retweeter's timeline: only its retweet of the post counts
            for tweet in page.get("data") or []:
                if isinstance(tweet, dict) and any(r.get("type") == "retweeted" and str(r.get("id")) == str(prov.get("post"))
                                                   for r in tweet.get("referenced_tweets") or []):
                    key, when = (str(tweet.get("author_id")), str(prov.get("post"))), utc_time(tweet.get("created_at")) or ""
                    self.retweeted_at[key] = max(when, self.retweeted_at.get(key, ""))  # retweeted twice: the newest, as listed
            return
        if endpoint in BLUESKY_USER_LISTS:
            self.add_bluesky_users(page, str(prov.get("post")), depth, *BLUESKY_USER_LISTS[endpoint])
            return
        if endpoint == "app.bsky.feed.getPostThread":  # the replies under the expanded post (known already)
            for post in bluesky.thread_below(page.get("thread"))[0]:
                self.add_bluesky_post(post, depth)
            return
        if endpoint in BLUESKY_POST_LISTS:
            for post in bluesky.listed(page.get("posts")):
                if isinstance(post, dict):
                    self.add_bluesky_post(post, depth)
            return
        for tweet in flatten_v2(json.loads(json.dumps(page))):
            self.add_post(tweet, depth)

    def add_post(self, tweet: dict[str, Any], depth: int) -> None:
        tid = str(tweet.get("id") or "")
        if not tid:
            return
        known = self.posts.get(tid)
        if known is not None:
            known["depth"] = min(known["depth"], depth)
            return
        author = tweet.get("author") or {}
        node: dict[str, Any] = {"kind": "post", "depth": depth, "author_id": str(tweet.get("author_id") or ""),
                                "created_at": utc_time(tweet.get("created_at")) or "", "text": str(tweet.get("text") or "")}
        if author.get("username"):
            node["author"] = node["label"] = str(author["username"])
        for name in METRICS:
            value = (tweet.get("public_metrics") or {}).get(name)
            if isinstance(value, int):
                node[name] = value
        self.posts[tid] = node
        self.parents[tid] = {PARENT_KINDS[r["type"]]: str(r["id"]) for r in tweet.get("referenced_tweets") or []
                             if r.get("type") in PARENT_KINDS and r.get("id")}

    def add_bluesky_users(self, page: dict[str, Any], post: str, depth: int, member: str, kind: str) -> None:
        for entry in bluesky.listed(page.get(member)):
            actor = entry.get("actor") if kind == "like" and isinstance(entry, dict) else entry
            did = actor.get("did") if isinstance(actor, dict) else None
            if not bluesky.is_did(did):
                continue
            node = self.users.setdefault(did, {"kind": "user", "depth": depth})
            node["depth"] = min(node["depth"], depth)
            if actor.get("handle"):
                node["label"] = str(actor["handle"])
            self.engaged[(did, post, kind)] = (utc_time(entry.get("createdAt")) or "") if kind == "like" else ""

    def add_bluesky_post(self, post: dict[str, Any], depth: int) -> None:
        uri = post.get("uri")
        if not bluesky.is_post_uri(uri):
            return
        known = self.posts.get(uri)
        if known is not None:
            known["depth"] = min(known["depth"], depth)
            return
        record = post.get("record") if isinstance(post.get("record"), dict) else {}
        author = post.get("author") if isinstance(post.get("author"), dict) else {}
        node: dict[str, Any] = {"kind": "post", "depth": depth, "author_id": str(author.get("did") or ""),
                                "created_at": utc_time(record.get("createdAt")) or "", "text": str(record.get("text") or "")}
        if author.get("handle"):
            node["author"] = node["label"] = str(author["handle"])
        for name, column in BLUESKY_METRICS.items():
            if isinstance(post.get(name), int):
                node[column] = post[name]
        self.posts[uri] = node
        refs = {"reply": reply_parent(post), "quote": quoted_uri(post)}
        self.parents[uri] = {kind: ref for kind, ref in refs.items() if bluesky.is_post_uri(ref)}

    def graph(self) -> nx.MultiDiGraph:
        graph = nx.MultiDiGraph()
        for tid, node in self.posts.items():
            graph.add_node(tid, **node)
        for uid, node in self.users.items():
            graph.add_node(uid, **node)
        for tid, parents in self.parents.items():
            for kind, parent in sorted(parents.items()):
                if parent in self.posts:
                    graph.add_edge(tid, parent, key=kind, kind=kind, time=self.posts[tid]["created_at"])
                else:
                    graph.nodes[tid]["parent_missing"] = parent
        for (uid, tid, kind), time in sorted(self.engaged.items()):
            if kind == "retweet":
                time = self.retweeted_at.get((uid, tid), time)
            if tid in self.posts:
                graph.add_edge(uid, tid, key=kind, kind=kind, time=time)
            else:
                graph.nodes[uid]["parent_missing"] = tid
        return graph


def write_cascade(graph: nx.MultiDiGraph, path: Path, fmt: str) -> list[Path]:
    """graphml, gexf, csv (``Source,Target,Kind,time`` and a node table beside it) through the exports'
    one dispatch (:func:`tweetform.export.graph.write_formats`), or jsonl (a line per node
    ``{"id", …attributes}``, then a line per edge ``{"source", "target", "kind", "time"}``)."""
    if fmt != "jsonl":
        return write_formats(graph, path, fmt, _write_edge_table)
    with open_text_output(path) as fh:
        for node, data in graph.nodes(data=True):
            fh.write(json.dumps({"id": node, **data}, ensure_ascii=False) + "\n")
        for source, target, data in graph.edges(data=True):
            fh.write(json.dumps({"source": source, "target": target, **data}, ensure_ascii=False) + "\n")
    return [path]


def _write_edge_table(graph: nx.MultiDiGraph, path: Path) -> list[Path]:
    with open_text_output(path) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(("Source", "Target", "Kind", "time"))
        writer.writerows((s, t, d["kind"], d["time"]) for s, t, d in graph.edges(data=True))
    return [path, write_node_table(graph, path, NODE_COLUMNS)]
