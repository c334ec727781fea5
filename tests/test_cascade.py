"""``scrapy crawl cascade`` on the sandbox equals the cascade its truth endpoint computes breadth first
from the world (``/_sandbox/truth/cascade``), through ``scrapy export cascade``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from crawling import ROOT, bucket, run_crawl

FAST = ("--users", "3000", "--seed", "7", "--window", "1", "--limit", "/2/tweets/search/all=300,300")


@pytest.fixture
def box(sandbox_factory):
    return sandbox_factory(*FAST)


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def export(data: Path, *args: str) -> subprocess.CompletedProcess:
    return ok(subprocess.run([sys.executable, "-m", "scrapy", "export", "cascade", *args, "--data", str(data)], cwd=ROOT,
                             capture_output=True, text=True, timeout=120))


def seed_of(box) -> int:
    """jack's recent tweet with replies, quotes, retweets and likes; its quotes have reactions of their own."""
    return box.get("/_sandbox/truth/engaged/12")["ids"][0]


def truth(box, seed: int, depth: int, include: str, max_tweets: int | None = None) -> dict[str, Any]:
    return box.get(f"/_sandbox/truth/cascade?seeds={seed}&depth={depth}&include={include}"
                   + (f"&max_tweets={max_tweets}" if max_tweets else ""))


def read_jsonl(path: Path) -> tuple[dict[str, dict], set[tuple[str, str, str]]]:
    nodes, edges = {}, set()
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if "source" in row:
            edges.add((row["source"], row["target"], row["kind"]))
        else:
            nodes[row.pop("id")] = row
    return nodes, edges


def expanded_posts(out: Path) -> list[str]:
    """The posts whose lists the crawl fetched (a list page's ``post``), each once."""
    return list(dict.fromkeys(line["__tweetform"]["post"] for lines in bucket(out, "cascades").values() for line in lines
                              if "post" in line["__tweetform"]))


def test_depth_3_cascade_equals_truth(box, tmp_path: Path):
    """Depth 3, three levels of posts (the sandbox's cascades: quotes of quotes, quoted replies, replies in
    a quote's thread at level 3, users reacting to level-2 posts): every post and user with its depth,
    every edge by kind, the posts expanded, each page once; the export in jsonl and in GEXF (read back
    with networkx) says the same."""
    seed = seed_of(box)
    include = "replies,quotes,retweets,likes"
    out = tmp_path / "data"
    result = ok(run_crawl(box, "cascade", out, tweet_id=seed, depth=3, include=include))
    job = next(iter(bucket(out, "cascades")))
    expected = truth(box, seed, 3, include)
    # the world's depth: level 3 finds posts of depth 3, and users reacting to the posts of depth 2
    assert {d for d in expected["posts"].values()} == {0, 1, 2, 3}
    second = {p for p, d in expected["posts"].items() if d == 2}
    assert second <= set(expected["expanded"])
    assert any(t in second and k in ("retweet", "like") for _, t, k in expected["edges"])
    assert any(expected["posts"].get(s) == 3 and expected["posts"].get(t) == 2 and k == "quote" for s, t, k in expected["edges"])
    assert sorted(expanded_posts(out)) == sorted(expected["expanded"])
    export(out, "--job", job, "--format", "jsonl", "-o", str(tmp_path / "c.jsonl"))
    nodes, edges = read_jsonl(tmp_path / "c.jsonl")
    assert {n: d["depth"] for n, d in nodes.items() if d["kind"] == "post"} == expected["posts"]
    assert {n: d["depth"] for n, d in nodes.items() if d["kind"] == "user"} == expected["users"]
    assert edges == {tuple(e) for e in expected["edges"]}
    assert {"reply", "quote", "retweet", "like"} == {k for _, _, k in edges}
    assert sorted(n for n, d in nodes.items() if d.get("parent_missing")) == expected["parent_missing"]
    lines = [line["__tweetform"]["page_id"] for lines in bucket(out, "cascades").values() for line in lines]
    assert len(lines) == len(set(lines))
    # export graph --edges on the cascades bucket: its retweeters pages are retweet edges user → the post's author
    done = subprocess.run([sys.executable, "-m", "scrapy", "export", "graph", "--bucket", "cascades", "--edges", "retweet",
                           "--format", "csv", "-o", str(tmp_path / "rt.csv"), "--data", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    from tweetform.export.tweet_network import read_csv_network

    authors = {p: str(box.get(f"/_sandbox/truth/tweet/{p}")["author_id"]) for _, p, k in expected["edges"] if k == "retweet"}
    weights: dict[tuple[str, str], int] = {}
    for u, p, k in expected["edges"]:
        if k == "retweet":
            weights[(u, authors[p])] = weights.get((u, authors[p]), 0) + 1
    network = read_csv_network(tmp_path / "rt.csv")
    assert {(s, t): d["weight"] for s, t, d in network.edges(data=True)} == weights
    export(out, "--format", "gexf", "-o", str(tmp_path / "c.gexf"))
    graph = nx.read_gexf(tmp_path / "c.gexf")
    assert {(s, t, d["kind"]) for s, t, d in graph.edges(data=True)} == edges
    assert graph.nodes[str(seed)]["label"] == "jack" and int(graph.nodes[str(seed)]["depth"]) == 0


def searches(out: Path) -> list[str]:
    """The conversations the crawl searched (its first pages' ``conversation_id:`` queries), as fetched."""
    from urllib.parse import parse_qs, urlparse

    found = []
    for lines in bucket(out, "cascades").values():
        for line in lines:
            query = parse_qs(urlparse(line["__tweetform"]["url"]).query)
            if line["__tweetform"].get("list") == "replies" and "next_token" not in query:
                found.append(query["query"][0].removeprefix("conversation_id:"))
    return found


def test_a_quote_that_replies_has_its_thread_searched_once(box, tmp_path: Path):
    """A quote that is also a reply belongs to another conversation: the cascade searches that thread
    when it expands the quote (its replies are collected, one level deeper), and every conversation
    once per job (a quote replying in the seed's thread does not search it again)."""
    seed = seed_of(box)
    include = "replies,quotes"
    out = tmp_path / "data"
    ok(run_crawl(box, "cascade", out, tweet_id=seed, depth=3, include=include))
    expected = truth(box, seed, 3, include)
    tweets = {p: box.get(f"/_sandbox/truth/tweet/{p}") for p in expected["posts"]}
    quote_replies = {p: str(t["conversation_id"]) for p, t in tweets.items()
                     if t.get("quoted_status_id") and t.get("in_reply_to_status_id") and p in expected["expanded"]}
    others = {c for c in quote_replies.values() if c not in expected["expanded"]}  # threads no expanded root searches
    assert others and set(expected["searched"]) >= others
    assert str(seed) in quote_replies.values()  # one replies in the seed's own thread: searched once all the same
    replies_there = {p for p, t in tweets.items() if str(t["conversation_id"]) in others and p not in quote_replies}
    assert replies_there
    done = searches(out)
    assert sorted(done) == sorted(expected["searched"]) and len(done) == len(set(done))
    export(out, "--format", "jsonl", "-o", str(tmp_path / "c.jsonl"))
    nodes, edges = read_jsonl(tmp_path / "c.jsonl")
    assert {n: d["depth"] for n, d in nodes.items() if d["kind"] == "post"} == expected["posts"]
    assert replies_there <= set(nodes) and edges == {tuple(e) for e in expected["edges"]}


def test_retweet_edges_carry_the_retweet_time_like_edges_none(box, tmp_path: Path):
    """include=retweet_times: each retweeter's timeline since the post, to its retweet: every retweet edge of
    the export has the retweet's time (the sandbox's truth reads it from the retweeter's timeline); a like
    edge's time is empty (the API has none); the tree is the truth's. Without retweets to time: one line, exit 2."""
    seed = seed_of(box)
    include = "replies,quotes,retweets,likes,retweet_times"
    out = tmp_path / "data"
    ok(run_crawl(box, "cascade", out, tweet_id=seed, depth=2, include=include))
    expected = truth(box, seed, 2, include)
    export(out, "--format", "jsonl", "-o", str(tmp_path / "c.jsonl"))
    rows = [json.loads(line) for line in (tmp_path / "c.jsonl").read_text().splitlines()]
    edges = [r for r in rows if "source" in r]
    assert {(e["source"], e["target"], e["kind"]) for e in edges} == {tuple(e) for e in expected["edges"]}
    retweets = {f"{e['source']} {e['target']}": e["time"] for e in edges if e["kind"] == "retweet"}
    assert retweets == expected["retweet_times"] and len(retweets) > 50 and all(retweets.values())
    likes = [e for e in edges if e["kind"] == "like"]
    assert likes and all(e["time"] == "" for e in likes)
    assert all(e["time"] for e in edges if e["kind"] in ("reply", "quote"))
    bad = run_crawl(box, "cascade", tmp_path / "bad", tweet_id=seed, include="replies,retweet_times")
    lines = [line for line in bad.stderr.splitlines() if line.strip()]
    assert bad.returncode == 2 and len(lines) == 1 and "retweet_times" in lines[0], lines


def test_max_tweets_keeps_the_breadth_first_prefix(box, tmp_path: Path):
    """max_tweets=30: exactly the first 30 posts in breadth-first order are expanded (the seed, then its
    replies and quotes in the API's order), and what their lists hold is collected; nothing more."""
    seed = seed_of(box)
    include = "replies,quotes,retweets"
    full = truth(box, seed, 2, include)["expanded"]
    expected = truth(box, seed, 2, include, max_tweets=30)
    assert expected["expanded"] == full[:30] and len(full) > 30
    out = tmp_path / "data"
    ok(run_crawl(box, "cascade", out, tweet_id=seed, depth=2, include=include, max_tweets=30))
    assert sorted(expanded_posts(out)) == sorted(expected["expanded"])
    export(out, "--format", "jsonl", "-o", str(tmp_path / "c.jsonl"))
    nodes, edges = read_jsonl(tmp_path / "c.jsonl")
    assert {n: d["depth"] for n, d in nodes.items() if d["kind"] == "post"} == expected["posts"]
    assert edges == {tuple(e) for e in expected["edges"]}


def test_bad_include_is_one_line(box, tmp_path: Path):
    result = run_crawl(box, "cascade", tmp_path, tweet_id=seed_of(box), include="replies,bookmarks")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "'bookmarks'" in lines[0], lines


def run_two_workers_kill_one(box, env: dict[str, str], redis_url: str) -> None:
    """Two cascade workers on the pushed job; one is SIGKILLed while it holds a request, a new one joins,
    the sandbox's latency is lifted, and the rest run until the job is done (idle workers exit)."""
    import time
    import redis
    from test_distributed import start_workers, wait_all

    r = redis.Redis.from_url(redis_url)
    slow = ("-s", "CONCURRENT_REQUESTS=2")
    steady = start_workers(env, 1, True, *slow, spiders="cascade")
    victims = start_workers(env, 1, False, *slow, spiders="cascade")
    try:
        deadline, holding = time.monotonic() + 60, False
        while not holding and time.monotonic() < deadline:
            holding = any(f"-{victims[0].pid}-" in json.loads(v)["w"] for v in r.hvals("tweetform:cascade:inflight"))
            time.sleep(0 if holding else 0.05)
        assert holding, "the victim never held a request"
        victims[0].send_signal(9)
        victims[0].communicate()
        victims += start_workers(env, 1, True, *slow, spiders="cascade")
        box.set_faults(latency=0)
        wait_all(steady + victims[1:], timeout=240)
    finally:
        for w in steady + victims:
            if w.poll() is None:
                w.kill()
                w.communicate()


def test_two_workers_one_killed_equal_truth(sandbox_factory, redis_url: str, tmp_path: Path):
    """A depth-3 cascade pushed to two workers; one is SIGKILLed while it holds requests: the other (and a
    new one) finish it, the tree equals the truth, no page written twice."""
    from test_distributed import push, worker_env

    box = sandbox_factory(*FAST, "--latency", "0.2")
    seed = seed_of(box)
    include = "replies,quotes,retweets"
    out = tmp_path / "data"
    env = worker_env(box, redis_url, out)
    push(env, "cascade", "--tweet-id", str(seed), "--depth", "3", "--include", include, "--job", "cascade-kill")
    run_two_workers_kill_one(box, env, redis_url)
    expected = truth(box, seed, 3, include)
    assert sorted(expanded_posts(out)) == sorted(expected["expanded"])
    export(out, "--job", "cascade-kill", "--format", "jsonl", "-o", str(tmp_path / "c.jsonl"))
    nodes, edges = read_jsonl(tmp_path / "c.jsonl")
    assert {n: d["depth"] for n, d in nodes.items() if d["kind"] == "post"} == expected["posts"]
    assert {n: d["depth"] for n, d in nodes.items() if d["kind"] == "user"} == expected["users"]
    assert edges == {tuple(e) for e in expected["edges"]}
    lines = [line["__tweetform"]["page_id"] for lines in bucket(out, "cascades").values() for line in lines]
    assert len(lines) == len(set(lines))


def test_budget_stop_then_continued_from_jobdir_pays_no_page_twice(box, tmp_path: Path):
    """$0.50 stops the cascade (exit 7, never past it); the same job with a larger budget and the same
    JOBDIR finishes it: the tree equals the truth, and no list page was fetched or written twice."""
    from crawling import FULL_LOG
    from test_cost_budget import stats_of
    from test_resume import fetched

    from tweetform.exitcodes import BUDGET_EXHAUSTED, DONE

    seed = seed_of(box)
    include = "replies,quotes,retweets"
    out, jobdir = tmp_path / "data", tmp_path / "jobdir"
    args = dict(tweet_id=seed, depth=2, include=include, job="cascade-budget")
    first = run_crawl(box, "cascade", out, budget=0.5, settings={"JOBDIR": jobdir, **FULL_LOG}, **args)
    assert first.returncode == BUDGET_EXHAUSTED, first.stderr[-3000:]
    assert 0 < stats_of(first)["tweetform/cost/usd"] <= 0.5 and box.get("/_sandbox/billing")["total_usd"] <= 0.5
    second = run_crawl(box, "cascade", out, budget=1000, settings={"JOBDIR": jobdir}, **args)
    assert second.returncode == DONE, second.stderr[-3000:]
    expected = truth(box, seed, 2, include)
    assert sorted(expanded_posts(out)) == sorted(expected["expanded"])
    export(out, "--format", "jsonl", "-o", str(tmp_path / "c.jsonl"))
    nodes, edges = read_jsonl(tmp_path / "c.jsonl")
    assert {n: d["depth"] for n, d in nodes.items() if d["kind"] == "post"} == expected["posts"]
    assert edges == {tuple(e) for e in expected["edges"]}
    pages = [line for lines in bucket(out, "cascades").values() for line in lines]
    assert len({p["__tweetform"]["page_id"] for p in pages}) == len(pages)
    for endpoint in ("/2/tweets/:id/retweeted_by", "/2/tweets/:id/quote_tweets"):
        assert fetched(box, endpoint) == sum(p["__tweetform"]["endpoint"] == endpoint for p in pages), endpoint


def test_budget_stop_continued_by_admin_budget_on_workers(box, redis_url: str, tmp_path: Path):
    """A pushed cascade with $0.50 stops at its budget on two workers; `scrapy admin budget JOB +1000`
    continues it: the tree equals the truth and no list page was fetched or written twice."""
    import redis
    from test_cost_distributed import admin
    from test_distributed import push, start_workers, wait_all, worker_env
    from test_resume import fetched

    seed = seed_of(box)
    include = "replies,quotes,retweets"
    out = tmp_path / "data"
    env = worker_env(box, redis_url, out)
    push(env, "cascade", "--tweet-id", str(seed), "--depth", "2", "--include", include, "--job", "cascade-money",
         "--budget", "0.5")
    wait_all(start_workers(env, 2, True, spiders="cascade"))
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    assert r.hget("tweetform:job:cascade-money", "state") == "budget_exhausted"
    assert 0 < box.get("/_sandbox/billing")["total_usd"] <= 0.5
    more = admin(env, "budget", "cascade-money", "+1000")
    assert more.returncode == 0 and "it continues" in more.stdout, more.stderr
    wait_all(start_workers(env, 2, True, spiders="cascade"))
    assert r.hget("tweetform:job:cascade-money", "state") != "budget_exhausted"
    expected = truth(box, seed, 2, include)
    assert sorted(expanded_posts(out)) == sorted(expected["expanded"])
    export(out, "--format", "jsonl", "-o", str(tmp_path / "c.jsonl"))
    nodes, edges = read_jsonl(tmp_path / "c.jsonl")
    assert {n: d["depth"] for n, d in nodes.items() if d["kind"] == "post"} == expected["posts"]
    assert edges == {tuple(e) for e in expected["edges"]}
    pages = [line for lines in bucket(out, "cascades").values() for line in lines]
    assert len({p["__tweetform"]["page_id"] for p in pages}) == len(pages)
    for endpoint in ("/2/tweets/:id/retweeted_by", "/2/tweets/:id/quote_tweets"):
        assert fetched(box, endpoint) == sum(p["__tweetform"]["endpoint"] == endpoint for p in pages), endpoint


def test_a_page_with_damaged_provenance_is_left_out_not_a_traceback(tmp_path: Path):
    """A file given to the export whose page has a depth that is not a number (hand-edited, another tool's):
    left out like any page that is not a cascade's, so the export ends in its one line."""
    page = {"__tweetform": {"endpoint": "app.bsky.feed.getPostThread", "api_version": "bluesky", "list": "replies",
                            "depth": "two"}, "thread": {"post": {"uri": "at://did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/app.bsky.feed.post/3mz2vrdtf3uae"}}}
    (tmp_path / "damaged.jsonl").write_text(json.dumps(page) + "\n")
    done = subprocess.run([sys.executable, "-m", "scrapy", "export", "cascade", "--format", "csv", "-o", str(tmp_path / "c.csv"),
                           str(tmp_path / "damaged.jsonl")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == ["tweetform: no cascade posts in 1 pages read: is it the cascades bucket?"]
    assert not (tmp_path / "c.csv").exists()
