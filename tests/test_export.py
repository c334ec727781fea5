"""``scrapy export graph|tweets`` on real crawl output from the sandbox, checked against its ground truth.

One module-wide set of crawls (both API versions, ids and user objects, a
protected account, timelines with replies, retweets and quotes) feeds every test.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from crawling import ROOT, bucket, run_crawl

from tweetform.commands.export import ExportError, export_graph, export_tweets, input_files
from tweetform.export.files import bucket_files, iter_pages
from tweetform.export.graph import GraphBuilder, read_csv_graph
from tweetform.export.tweets import COLUMNS, TweetWriter

# the same sandbox as the end-to-end crawl tests (one process for both): generous list limits
FAST = ("--users", "3000", "--seed", "7", "--window", "1", "--limit", "/friends/ids=200", "--limit", "/followers/ids=200",
        "--limit", "/friends/list=200", "--limit", "/followers/list=200", "--limit", "/2/users/:id/following=200",
        "--limit", "/2/users/:id/followers=200")
TIMELINE_TWEETS = 250


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def export(data: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scrapy", "export", *args, "--data", str(data)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def crawled(sandbox_factory, tmp_path_factory) -> dict[str, Any]:
    box = sandbox_factory(*FAST)
    ex = box.get("/_sandbox/examples")
    out = tmp_path_factory.mktemp("crawl")
    seed_friends, seed_followers = ex["ordinary"][0], ex["ordinary"][1]
    protected = ex["protected"][0]
    # v2, ids, two levels (with a protected account among the seeds), and v1.1 user objects
    ok(run_crawl(box, "friends", out, user_id=f"{seed_friends},{protected}", depth=2, max_users=15, api="2"))
    ok(run_crawl(box, "followers", out, user_id=seed_followers, data_type="users", api="1.1"))
    ok(run_crawl(box, "users", out, user_id=f"{seed_friends},{seed_followers}", api="2"))
    users = [ex["long_timeline"][0], ex["ordinary"][2]]
    ok(run_crawl(box, "timeline", out, user_id=",".join(map(str, users)), max_tweets=TIMELINE_TWEETS, api="2"))
    ok(run_crawl(box, "timeline", out, user_id=",".join(map(str, users)), max_tweets=TIMELINE_TWEETS, api="1.1", bucket="timelines11"))
    return {"box": box, "out": out, "seed_friends": seed_friends, "seed_followers": seed_followers, "protected": protected,
            "timeline_users": users}


def truth_edges(c: dict[str, Any]) -> set[tuple[str, str]]:
    box, out = c["box"], c["out"]
    edges = set()
    for key in bucket(out, "friend_ids"):
        edges |= {(key, str(t)) for t in box.truth("following", int(key))}
    edges |= {(str(f), str(c["seed_followers"])) for f in box.truth("followers", c["seed_followers"])}
    return edges


GRAPH_BUCKETS = ("friend_ids", "followers", "errors", "users")


@pytest.mark.parametrize("fmt", ["graphml", "gexf", "csv"])
def test_graph_edges_equal_ground_truth(crawled, tmp_path: Path, fmt: str):
    target = tmp_path / f"net.{fmt}"
    expected = truth_edges(crawled)
    if fmt == "graphml":  # the command itself once; the other formats through the same function
        args = [a for b in GRAPH_BUCKETS for a in ("--bucket", b)]
        result = ok(export(crawled["out"], "graph", *args, "--format", fmt, "-o", str(target)))
        assert f"wrote {len(expected):,} edges" in result.stdout
    else:
        export_graph(input_files(crawled["out"], list(GRAPH_BUCKETS), []), fmt, target)
    graph = {"graphml": nx.read_graphml, "gexf": nx.read_gexf, "csv": read_csv_graph}[fmt](target)
    assert set(graph.edges()) == expected
    assert graph.number_of_edges() == len(expected)
    # attributes: user objects (v1.1 followers/list, v2 users look-up and v2 id pages' default fields)
    box = crawled["box"]
    for node in (str(crawled["seed_friends"]), str(crawled["seed_followers"])):
        data = graph.nodes[node]
        assert data["screen_name"] == box.get(f"/_sandbox/truth/user/{node}")["screen_name"]
        assert int(data["followers_count"]) >= 0 and str(data["protected"]) in ("False", "false", "0")
    follower = str(box.truth("followers", crawled["seed_followers"])[0])
    assert graph.nodes[follower]["screen_name"] == box.get(f"/_sandbox/truth/user/{follower}")["screen_name"]
    # the protected seed: known from the errors bucket, no edges of its own
    assert graph.nodes[str(crawled["protected"])]["error"] == "protected"
    assert graph.out_degree(str(crawled["protected"])) == 0


def test_graph_from_any_mix_of_versions_is_deduplicated(crawled, tmp_path: Path):
    """The same network crawled again in v1.1 (ids and user objects) adds no edge."""
    box, out = crawled["box"], crawled["out"]
    again = tmp_path / "again"
    ok(run_crawl(box, "friends", again, user_id=crawled["seed_friends"], api="1.1", data_type="users"))
    files = bucket_files(out, "friend_ids") + bucket_files(again, "friends") + bucket_files(out, "friend_ids")
    builder = GraphBuilder().add_pages(iter_pages(files))
    seed = str(crawled["seed_friends"])
    assert {e for e in builder.graph.edges() if e[0] == seed} == {(seed, str(t)) for t in box.truth("following", int(seed))}
    friend_edges = {(key, str(t)) for key in bucket(out, "friend_ids") for t in box.truth("following", int(key))}
    assert set(builder.graph.edges()) == friend_edges and builder.graph.number_of_edges() == len(friend_edges)
    assert builder.list_pages > len(bucket(out, "friend_ids"))  # every page was read, and pages read twice skipped


def test_graph_needs_a_network_bucket(crawled, tmp_path: Path):
    """Neither follow lists nor tweets (a users look-up bucket): one line, exit 2, no file."""
    result = export(crawled["out"], "graph", "--bucket", "users", "-o", str(tmp_path / "x.graphml"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "no friends/followers pages and no tweets" in result.stderr
    assert not (tmp_path / "x.graphml").exists()
    with pytest.raises(ExportError, match="plain word"):
        input_files(crawled["out"], ["../etc"], [])


def tweets_truth(c: dict[str, Any]) -> list[str]:
    ids: list[str] = []
    for uid in c["timeline_users"]:
        ids += [str(t) for t in c["box"].truth("timeline", uid)[:TIMELINE_TWEETS]]
    return ids


@pytest.mark.parametrize("bucket_name", ["timelines", "timelines11"])
def test_exported_tweets_equal_ground_truth(crawled, tmp_path: Path, bucket_name: str):
    for fmt in ("csv", "jsonl"):
        target = tmp_path / f"tweets.{fmt}"
        if bucket_name == "timelines" and fmt == "csv":  # the command itself once
            result = ok(export(crawled["out"], "tweets", "--bucket", bucket_name, "--format", fmt, "-o", str(target)))
            assert f"wrote {len(tweets_truth(crawled)):,} tweets (v2 pages)" in result.stdout
        else:
            export_tweets(input_files(crawled["out"], [bucket_name], []), fmt, target)
        if fmt == "csv":
            with open(target, newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
            assert list(rows[0]) == list(COLUMNS)
            ids = [r["id"] for r in rows]
            assert all(r["author.username"] for r in rows)  # the author expanded on every row
        else:
            tweets = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
            ids = [str(t.get("id_str") or t["id"]) for t in tweets]
            assert all(t.get("author") or t.get("user") for t in tweets)
        assert sorted(ids) == sorted(tweets_truth(crawled))
        assert len(ids) == len(set(ids))


def test_v2_tweets_match_twarc2_tools(crawled, tmp_path: Path):
    """JSONL equals twarc's flatten; CSV core columns equal ``twarc2 csv`` (twarc-csv) on the same pages."""
    from twarc.expansions import flatten

    files = bucket_files(crawled["out"], "timelines")
    pages = list(iter_pages(files))
    ours_jsonl = tmp_path / "t.jsonl"
    with open(ours_jsonl, "w", encoding="utf-8") as fh:
        TweetWriter(fh, "jsonl").add_pages(pages)
    ours = [json.loads(line) for line in ours_jsonl.read_text(encoding="utf-8").splitlines()]
    assert all(t.pop("__tweetform")["bucket"] == "timelines" for t in ours)
    theirs = [t for page in pages for t in flatten(json.loads(json.dumps(page)))]
    assert ours == theirs
    kinds = {r["type"] for t in ours for r in t.get("referenced_tweets", [])}
    assert kinds == {"replied_to", "retweeted", "quoted"}  # the comparison covers every kind of reference

    ours_csv = tmp_path / "t.csv"
    with open(ours_csv, "w", encoding="utf-8", newline="") as fh:
        TweetWriter(fh, "csv").add_pages(pages)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas deprecations inside twarc-csv
        from twarc_csv import DataFrameConverter

        extra = sorted({f"__tweetform.{k}" for p in pages for k in p["__tweetform"]}
                       | {f"author.public_metrics.{k}" for p in pages for u in p["includes"]["users"] for k in u["public_metrics"]})
        frame = DataFrameConverter("tweets", extra_input_columns=",".join(extra)).process(pages)
        frame.to_csv(tmp_path / "twarc.csv", index=False)
    with open(tmp_path / "twarc.csv", newline="", encoding="utf-8") as fh:
        reference = list(csv.DictReader(fh))
    with open(ours_csv, newline="", encoding="utf-8") as fh:
        mine = list(csv.DictReader(fh))
    assert [r["id"] for r in mine] == [r["id"] for r in reference]

    def same(value: str) -> str:  # pandas writes an int column with gaps as floats
        return value[:-2] if value.endswith(".0") and value[:-2].isdigit() else value

    core = [c for c in COLUMNS if not c.startswith("__")]
    for a, b in zip(mine, reference):
        assert {c: same(a[c]) for c in core} == {c: same(b.get(c, "")) for c in core}, a["id"]


def test_v1_and_v2_rows_agree(crawled, tmp_path: Path):
    """The same tweets from both API versions fill the shared columns alike."""
    rows = {}
    for name in ("timelines", "timelines11"):
        target = tmp_path / f"{name}.csv"
        with open(target, "w", encoding="utf-8", newline="") as fh:
            TweetWriter(fh, "csv").add_pages(iter_pages(bucket_files(crawled["out"], name)))
        with open(target, newline="", encoding="utf-8") as fh:
            rows[name] = {r["id"]: r for r in csv.DictReader(fh)}
    assert rows["timelines"].keys() == rows["timelines11"].keys()
    shared = ["referenced_tweets.replied_to.id", "referenced_tweets.retweeted.id", "referenced_tweets.quoted.id",
              "author_id", "in_reply_to_user_id", "in_reply_to_username", "retweeted_user_id", "retweeted_username",
              "quoted_user_id", "quoted_username", "text", "lang", "public_metrics.retweet_count",
              "public_metrics.like_count", "entities.hashtags", "entities.mentions", "author.username", "author.name",
              "author.public_metrics.followers_count", "author.public_metrics.tweet_count"]
    for tid, v2 in rows["timelines"].items():
        v1 = rows["timelines11"][tid]
        assert {c: v2[c] for c in shared} == {c: v1[c] for c in shared}, tid
        assert v2["created_at"][:19] == v1["created_at"][:19]


def test_tweets_export_reads_a_copy_of_the_pages_once(crawled, tmp_path: Path):
    """A bucket given twice (or a page in two files) yields each tweet once."""
    copy = tmp_path / "copy"
    shutil.copytree(crawled["out"] / "timelines", copy)
    message = export_tweets(input_files(crawled["out"], ["timelines"], [str(copy)]), "csv", tmp_path / "t.csv")
    assert message.startswith(f"wrote {len(tweets_truth(crawled)):,} tweets")


def test_tweet_network_of_v1_and_v2_timelines_agree(crawled, tmp_path: Path):
    """export graph of a timelines bucket (no follow lists: the user network of its tweets) is the same
    network from v1.1 pages (embedded originals, user_mentions) as from v2 pages (includes, mentions)."""
    from tweetform.export.tweet_network import read_csv_network

    graphs = []
    for name in ("timelines", "timelines11"):
        ok(export(crawled["out"], "graph", "--bucket", name, "--format", "csv", "-o", str(tmp_path / f"{name}.csv")))
        graphs.append(read_csv_network(tmp_path / f"{name}.csv"))
    # v1.1 times have whole seconds only
    edges = [{(s, t, k): (d["weight"], d["first_time"][:19], d["last_time"][:19], d["tweet_ids"])
              for s, t, k, d in g.edges(keys=True, data=True)} for g in graphs]
    assert edges[0] == edges[1] and {k for _, _, k in edges[0]} == {"retweet", "quote", "reply", "mention"}
