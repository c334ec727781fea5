"""``scrapy export graph`` of a tweet bucket: the user network of retweets, quotes, replies and mentions
of a search crawled from the sandbox equals the network the sandbox computes from its world's records."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from crawling import ROOT, run_crawl

from tweetform.export.tweet_network import read_csv_network

FAST = ("--users", "3000", "--seed", "7", "--window", "1", "--limit", "/2/tweets/search/all=300,300")
QUERY = "model"  # ~1,100 recent tweets: every kind of edge, some of weight 2 and more


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def export(data: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scrapy", "export", "graph", *args, "--data", str(data)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def crawled(sandbox_factory, tmp_path_factory) -> dict[str, Any]:
    box = sandbox_factory(*FAST)
    out = tmp_path_factory.mktemp("search")
    ok(run_crawl(box, "search", out, query=QUERY))
    return {"box": box, "out": out}


def truth(box: Any, edges: str | None = None) -> dict[tuple[str, str, str], dict[str, Any]]:
    found = box.get(f"/_sandbox/truth/network?query={QUERY}" + (f"&edges={edges}" if edges else ""))["edges"]
    return {(e["source"], e["target"], e["kind"]): e for e in found}


def as_found(graph: nx.MultiDiGraph) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(s, t, k): {"source": s, "target": t, "kind": d["kind"], "weight": int(d["weight"]), "first_time": d["first_time"],
                        "last_time": d["last_time"], "tweet_ids": [int(i) for i in str(d["tweet_ids"]).split()]}
            for s, t, k, d in graph.edges(keys=True, data=True)}


@pytest.mark.parametrize("fmt", ["csv", "graphml", "gexf"])
def test_search_network_equals_truth(crawled, tmp_path: Path, fmt: str):
    """Every edge (source, target, kind) with its weight, first and last time and tweet ids equals the
    sandbox's; the files read back with networkx (the GEXF is what Gephi opens); usernames on the nodes."""
    box = crawled["box"]
    target = tmp_path / f"net.{fmt}"
    result = ok(export(crawled["out"], "--bucket", "search", "--format", fmt, "-o", str(target)))
    expected = truth(box)
    assert {k for _, _, k in expected} == {"retweet", "quote", "reply", "mention"}
    assert any(e["weight"] > 1 for e in expected.values())
    assert f"wrote {len(expected):,} edges" in result.stdout
    reader = {"csv": read_csv_network, "graphml": lambda p: nx.read_graphml(p, edge_key_type=str), "gexf": nx.read_gexf}[fmt]
    graph = reader(target)
    assert isinstance(graph, nx.MultiDiGraph)
    assert as_found(graph) == expected
    for node in list(graph.nodes)[:20]:  # users an includes names (not suspended or deleted ones)
        user = box.get(f"/_sandbox/truth/user/{node}")
        if not (user["suspended"] or user["deleted"]):
            assert graph.nodes[node]["label"] == user["screen_name"]


def test_edges_chooses_the_kinds(crawled, tmp_path: Path):
    target = tmp_path / "rt.csv"
    ok(export(crawled["out"], "--bucket", "search", "--edges", "retweet,quote", "--format", "csv", "-o", str(target)))
    assert as_found(read_csv_network(target)) == truth(crawled["box"], "retweet,quote")
    bad = export(crawled["out"], "--bucket", "search", "--edges", "retweet,like", "-o", str(tmp_path / "x.csv"))
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "'like'" in bad.stderr
    assert not (tmp_path / "x.csv").exists()


def test_a_tweet_read_twice_counts_once(crawled, tmp_path: Path):
    """The same search crawled again by another job: each tweet counts once, the weights unchanged."""
    box, out = crawled["box"], crawled["out"]
    again = tmp_path / "data"
    ok(run_crawl(box, "search", again, query=QUERY))
    target = tmp_path / "net.graphml"
    both = [str(p) for p in (out / "search").iterdir()] + [str(p) for p in (again / "search").iterdir()]
    result = ok(export(tmp_path, "--format", "graphml", "-o", str(target), *both))
    assert "counted once" in result.stdout
    assert as_found(nx.read_graphml(target, edge_key_type=str)) == truth(box)


def test_self_loops_kept_and_unresolved_originals_counted():
    """A reply to oneself is a self-loop; a retweet whose original is not in the includes names no author
    (counted, not guessed); a user mentioned twice in one tweet is one mention; a retweet has no mentions."""
    from tweetform.export.tweet_network import TweetNetwork

    prov = {"endpoint": "/2/tweets/search/recent", "api_version": "2", "bucket": "search", "key": "k", "job": "j"}
    page = {"data": [
        {"id": "10", "author_id": "1", "created_at": "2024-05-01T12:00:00.000Z", "in_reply_to_user_id": "1",
         "referenced_tweets": [{"type": "replied_to", "id": "9"}],
         "entities": {"mentions": [{"id": "2", "username": "bob"}, {"id": "2", "username": "bob"}]}},
        {"id": "11", "author_id": "1", "created_at": "2024-05-01T13:00:00.000Z",
         "referenced_tweets": [{"type": "retweeted", "id": "8"}], "entities": {"mentions": [{"id": "3", "username": "c"}]}},
    ], "includes": {"users": [{"id": "1", "username": "ann"}, {"id": "2", "username": "bob"}]}, "__tweetform": prov}
    network = TweetNetwork().add_pages([page, page])
    graph = network.graph()
    assert sorted(graph.edges(keys=True)) == [("1", "1", "reply"), ("1", "2", "mention")]
    assert graph.edges["1", "2", "mention"]["weight"] == 1 and graph.nodes["2"]["label"] == "bob"
    assert network.unresolved == 1 and network.duplicates == 2
