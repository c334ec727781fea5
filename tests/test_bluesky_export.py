"""``scrapy export graph|tweets|ids`` of ``-a api=bluesky`` buckets: real crawls against the sandbox's
Bluesky face, their exports compared with the face's truth (DIDs, handles, at:// URIs)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from test_bluesky_crawl import bluesky_crawl

from crawling import ROOT
from tweetform.export.graph import read_csv_graph
from tweetform.export.tweet_network import read_csv_network


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def export(data: Path, kind: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scrapy", "export", kind, *args, "--data", str(data)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def crawled(sandbox_factory, tmp_path_factory) -> dict[str, Any]:
    """Two demo accounts' author feeds and a depth-2 follows crawl with profiles (max 30 users), one output directory."""
    from conftest import SMALL_WORLD

    from test_longitudinal import set_clock

    box = sandbox_factory(*SMALL_WORLD)
    set_clock(box, 0)  # the truth the tests read is the world the crawls saw (another module may have moved the clock)
    out = tmp_path_factory.mktemp("bsky")
    accounts = box.get("/_sandbox/truth/bsky/accounts")
    feeds = [accounts[0]["did"], accounts[1]["did"]]
    ok(bluesky_crawl(box, "timeline", out, user_id=",".join(feeds)))
    ok(bluesky_crawl(box, "friends", out, user_id=feeds[0], depth=2, max_users=30, data_type="users"))
    return {"box": box, "out": out, "feeds": feeds}


def test_follows_graph_has_dids_as_nodes_and_handles_as_attributes(crawled, tmp_path: Path):
    box, seed = crawled["box"], crawled["feeds"][0]
    target = tmp_path / "follows.csv"
    result = ok(export(crawled["out"], "graph", "--bucket", "friends", "--format", "csv", "-o", str(target)))
    graph = read_csv_graph(target)
    expanded = box.get(f"/_sandbox/truth/bsky/reachable?seeds={seed}&depth=2&direction=follows&max_users=30")["dids"]
    truth = {(did, other) for did in expanded for other in box.get(f"/_sandbox/truth/bsky/follows/{did}")["dids"]}
    assert set(graph.edges()) == truth and len(truth) > 100
    assert f"wrote {len(truth):,} edges" in result.stdout
    for did in expanded[:10]:  # every node a DID; the handle (as the face resolves it) its label and screen_name
        profile = box.get(f"/_sandbox/truth/bsky/profile/{did}")
        assert graph.nodes[did]["screen_name"] == graph.nodes[did]["Label"] == profile["handle"]
        assert graph.nodes[did]["crawled"] == "True"
    assert all(node.startswith("did:plc:") for node in graph.nodes)
    # graphml: the same edges, read back by networkx
    ok(export(crawled["out"], "graph", "--bucket", "friends", "-o", str(tmp_path / "follows.graphml")))
    assert set(nx.read_graphml(tmp_path / "follows.graphml").edges()) == truth


@pytest.mark.parametrize("fmt", ["csv", "gexf"])
def test_feed_network_equals_truth(crawled, tmp_path: Path, fmt: str):
    """Reposts, quotes, replies and mentions of two author feeds: each edge (source DID, target DID, kind)
    with its weight, times and post URIs equals the face's truth from the world's records."""
    box = crawled["box"]
    expected: dict[tuple[str, str, str], dict[str, Any]] = {}
    for did in crawled["feeds"]:
        for e in box.get(f"/_sandbox/truth/bsky/network/{did}")["edges"]:
            expected[(e["source"], e["target"], e["kind"])] = e
    assert {k for _, _, k in expected} == {"retweet", "quote", "reply", "mention"}
    target = tmp_path / f"net.{fmt}"
    result = ok(export(crawled["out"], "graph", "--bucket", "timelines", "--format", fmt, "-o", str(target)))
    assert f"wrote {len(expected):,} edges" in result.stdout
    graph = read_csv_network(target) if fmt == "csv" else nx.read_gexf(target)
    found = {}
    for s, t, d in graph.edges(data=True):
        found[(s, t, d["kind"])] = {"source": s, "target": t, "kind": d["kind"], "weight": int(d["weight"]),
                                    "first_time": d["first_time"], "last_time": d["last_time"],
                                    "tweet_ids": str(d["tweet_ids"]).split()}
    assert found == expected
    # --edges repost (Bluesky's word) is the retweet kind alone
    ok(export(crawled["out"], "graph", "--bucket", "timelines", "--edges", "repost", "--format", "csv", "-o", str(tmp_path / "r.csv")))
    assert {(s, t) for s, t, _ in read_csv_network(tmp_path / "r.csv").edges(keys=True)} == \
        {(s, t) for s, t, k in expected if k == "retweet"}


def test_feed_posts_as_tweet_rows_equal_truth(crawled, tmp_path: Path):
    box, did = crawled["box"], crawled["feeds"][0]
    target = tmp_path / "posts.csv"
    result = ok(export(crawled["out"], "tweets", "--bucket", "timelines", "--format", "csv", "-o", str(target)))
    with open(target, encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["__tweetform.key"] == did]
    truth = box.get(f"/_sandbox/truth/bsky/feed/{did}")["items"]
    # one row per feed entry, in feed order: a post by its at:// URI, a repost by its repost record's
    assert [r["id"] for r in rows] == [t["repost"] or t["uri"] for t in truth]
    assert "Bluesky pages" in result.stdout
    for row, item in zip(rows, truth):
        post = box.get(f"/_sandbox/truth/bsky/post?uri={item['uri']}")
        assert row["__tweetform.api_version"] == "bluesky"
        if item["repost"]:
            assert row["author_id"] == did and row["referenced_tweets.retweeted.id"] == item["uri"]
            assert row["retweeted_user_id"] == post["author"]
        else:
            assert row["author_id"] == post["author"] == did and row["author.username"]
            assert row["created_at"].endswith("Z") and row["text"] and row["lang"]
        assert row["public_metrics.like_count"].isdigit() and row["public_metrics.retweet_count"].isdigit()
    replies = [r for r in rows if r["referenced_tweets.replied_to.id"]]
    assert replies and all(r["in_reply_to_user_id"] == r["referenced_tweets.replied_to.id"][5:].split("/")[0] for r in replies)
    assert all(r["conversation_id"].startswith("at://") for r in replies)


def test_dehydrated_ids_are_dids_and_post_uris(crawled, tmp_path: Path):
    box, did = crawled["box"], crawled["feeds"][0]
    ok(export(crawled["out"], "ids", "--bucket", "timelines", "-o", str(tmp_path / "posts.txt")))
    uris = (tmp_path / "posts.txt").read_text().split()
    both = [t["uri"] for d in crawled["feeds"] for t in box.get(f"/_sandbox/truth/bsky/feed/{d}")["items"]]
    assert uris == list(dict.fromkeys(both))  # a repost's original post, once
    ok(export(crawled["out"], "ids", "--bucket", "friends", "-o", str(tmp_path / "users.txt")))
    expanded = box.get(f"/_sandbox/truth/bsky/reachable?seeds={did}&depth=2&direction=follows&max_users=30")["dids"]
    listed = {other for d in expanded for other in box.get(f"/_sandbox/truth/bsky/follows/{d}")["dids"]}
    assert set((tmp_path / "users.txt").read_text().split()) == listed


def test_threads_and_engagement_lists_export_as_truth(crawled, tmp_path: Path):
    """A conversation bucket (getPostThread trees) gives every post of each thread as a tweet row; retweeted_by
    and liking_users buckets (getRepostedBy, getLikes) give reposter/liker → author edges."""
    box = crawled["box"]
    out = tmp_path / "data"
    author = box.get("/_sandbox/truth/bsky/did?ids=12")["dids"]["12"]  # jack: recent posts with every reaction
    seeds = box.get(f"/_sandbox/truth/bsky/engaged/{author}")["uris"][:3]
    assert len(seeds) == 3
    for spider in ("conversation", "retweeted_by", "liking_users"):
        ok(bluesky_crawl(box, spider, out, tweet_id=",".join(seeds)))

    ok(export(out, "tweets", "--bucket", "conversations", "--format", "csv", "-o", str(tmp_path / "threads.csv")))
    with open(tmp_path / "threads.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    roots = {r["conversation_id"] for r in rows}
    expected = set().union(*({root, *box.get(f"/_sandbox/truth/bsky/thread?uri={root}")["uris"]} for root in roots))
    assert {r["id"] for r in rows} == expected and set(seeds) <= expected and len(expected) > len(roots)
    assert len(rows) == len(expected)  # each post once, however many pages hold it

    for bucket, truth_list in (("retweeted_by", "reposts"), ("liking_users", "likes")):
        target = tmp_path / f"{bucket}.csv"
        ok(export(out, "graph", "--bucket", bucket, "--format", "csv", "-o", str(target)))
        edges = set(read_csv_graph(target).edges())
        truth = {(user, author) for uri in seeds for user in box.get(f"/_sandbox/truth/bsky/{truth_list}?uri={uri}")["dids"]}
        assert edges == truth and truth, bucket


def test_diff_of_two_bluesky_jobs_lists_the_follows_the_world_changed(crawled, tmp_path: Path):
    """scrapy export diff on Bluesky follows pages: the edges added and removed between a job and one a week later
    (the sandbox clock moved) are the changes of the face's truth."""
    from test_longitudinal import WEEK, set_clock

    box = crawled["box"]
    candidates = box.get(f"/_sandbox/truth/bsky/reachable?seeds={crawled['feeds'][0]}&depth=2&direction=follows")["dids"]
    try:
        before, after = {}, {}
        for did in candidates:
            before[did] = set(box.get(f"/_sandbox/truth/bsky/follows/{did}")["dids"])
        set_clock(box, WEEK)
        for did in candidates:
            after[did] = set(box.get(f"/_sandbox/truth/bsky/follows/{did}")["dids"])
        changed = [d for d in candidates if before[d] - after[d] and after[d] - before[d]][:3]
        assert changed, "the sandbox world changed no follows list in a week"
        set_clock(box, 0)
        ok(bluesky_crawl(box, "friends", tmp_path, user_id=",".join(changed), job="week-1"))
        set_clock(box, WEEK)
        ok(bluesky_crawl(box, "friends", tmp_path, user_id=",".join(changed), job="week-2"))
    finally:
        set_clock(box, 0)
    target = tmp_path / "diff.csv"
    result = ok(export(tmp_path, "diff", "week-1", "week-2", "-o", str(target)))
    with open(target, encoding="utf-8", newline="") as fh:
        rows = {(r["change"], r["source"], r["target"]) for r in csv.DictReader(fh)}
    truth = {("added", d, t) for d in changed for t in after[d] - before[d]}
    truth |= {("removed", d, t) for d in changed for t in before[d] - after[d]}
    assert rows == truth
    assert f"{len([r for r in truth if r[0] == 'added']):,} edge" in result.stderr
