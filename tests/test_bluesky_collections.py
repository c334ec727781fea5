"""``-a api=bluesky`` on ``conversation``, ``quotes``, ``retweeted_by``, ``liking_users`` and ``cascade``:
real ``scrapy crawl`` processes (and workers through a real Redis) against the sandbox's Bluesky face,
their output compared with the face's ground truth (``/_sandbox/truth/bsky/…``, computed from the world)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import SMALL_WORLD
from crawling import ROOT, bucket, crawl_env, errors_of
from test_bluesky_crawl import bluesky_crawl
from test_cascade import export, read_jsonl, run_two_workers_kill_one
from test_distributed import no_process_left_behind, push, worker_env
from test_resume import lines_on_disk

from tweetform import exitcodes
from tweetform.api.bluesky import post_key

__all__ = ["no_process_left_behind"]  # its autouse fixture: no worker outlives a test
ALL = "replies,quotes,retweets,likes"


@pytest.fixture
def box(sandbox_factory: Any) -> Any:
    return sandbox_factory(*SMALL_WORLD)


def engaged(box: Any) -> list[str]:
    """jack's (user 12's) recent posts with replies, quotes, reposts and likes, as at:// URIs."""
    did = box.get("/_sandbox/truth/bsky/did?ids=12")["dids"]["12"]
    return box.get(f"/_sandbox/truth/bsky/engaged/{did}")["uris"]


def missing_post(uri: str) -> str:
    return uri.rsplit("/", 1)[0] + "/3aaaaaaaaaaaa"  # its author's, a record key no post has


def listed(pages: list[dict[str, Any]], member: str) -> list[str]:
    """What a key's list pages hold, in page order: post URIs, or the reposters' and likers' DIDs."""
    out = []
    for page in pages:
        if page["__tweetform"]["endpoint"] == "app.bsky.feed.getPosts":
            continue
        for entry in page[member]:
            out.append(entry["uri"] if member == "posts" else (entry["actor"] if member == "likes" else entry)["did"])
    return out


def test_quotes_reposts_and_likes_equal_truth(box: Any, tmp_path: Path) -> None:
    """Each seed's list, page after page (short pages included) to the end, equals the truth; the seeds'
    look-up is written under the job's key; a post that is not there is an errors record, not an empty list."""
    seeds = engaged(box)[:3]
    gone = missing_post(seeds[0])
    for spider, bucket_name, member, truth in (("quotes", "quotes", "posts", "quotes"),
                                               ("retweeted_by", "retweeted_by", "repostedBy", "reposts"),
                                               ("liking_users", "liking_users", "likes", "likes")):
        out = tmp_path / spider
        done = bluesky_crawl(box, spider, out, tweet_id=",".join([*seeds, gone]), job=f"{spider}-job")
        assert done.returncode == 0, done.stderr[-3000:]
        pages = bucket(out, bucket_name)
        assert set(pages) == {post_key(s) for s in seeds} | {f"{spider}-job"}
        for seed in seeds:
            expected = box.get(f"/_sandbox/truth/bsky/{truth}?uri={seed}")
            assert listed(pages[post_key(seed)], member) == expected["uris" if truth == "quotes" else "dids"], (spider, seed)
            prov = pages[post_key(seed)][0]["__tweetform"]
            assert prov["api_version"] == "bluesky" and prov["key"] == post_key(seed) and prov["credential"] == f"ip:direct:{socket.gethostname()}"
        assert sum(len(listed(pages[post_key(s)], member)) for s in seeds) > 0
        looked_up = [p["uri"] for line in pages[f"{spider}-job"] for p in line["posts"]]
        assert sorted(looked_up) == sorted(seeds)
        assert errors_of(out) == {gone: "not_found_or_deleted"}


def test_quotes_max_tweets_stops_each_list(box: Any, tmp_path: Path) -> None:
    seed = engaged(box)[0]
    truth = box.get(f"/_sandbox/truth/bsky/likes?uri={seed}")["dids"]
    assert len(truth) > 3
    done = bluesky_crawl(box, "liking_users", tmp_path, tweet_id=seed, max_users=3)
    assert done.returncode == 0, done.stderr[-3000:]
    assert listed(bucket(tmp_path, "liking_users")[post_key(seed)], "likes") == truth[:3]


def test_conversation_is_each_seeds_whole_thread_under_its_root(box: Any, tmp_path: Path) -> None:
    """A reply and the root of another thread: each thread is fetched once, whole, under its root's key;
    every reply at any level equals the truth, in the AppView's depth-first order."""
    roots = engaged(box)[:2]
    replies = box.get(f"/_sandbox/truth/bsky/replies?uri={roots[0]}")["uris"]
    assert replies
    gone = missing_post(roots[1])
    done = bluesky_crawl(box, "conversation", tmp_path, tweet_id=",".join([replies[0], roots[1], roots[0], gone]), job="conv")
    assert done.returncode == 0, done.stderr[-3000:]
    pages = bucket(tmp_path, "conversations")
    assert set(pages) == {post_key(r) for r in roots} | {"conv"}
    for root in roots:
        (page,) = pages[post_key(root)]  # one answer: the whole thread
        assert page["thread"]["post"]["uri"] == root and page["__tweetform"]["endpoint"] == "app.bsky.feed.getPostThread"
        got, stack = [], list(reversed(page["thread"]["replies"]))
        while stack:
            node = stack.pop()
            got.append(node["post"]["uri"])
            stack.extend(reversed(node["replies"]))
        assert got == box.get(f"/_sandbox/truth/bsky/thread?uri={root}")["uris"] and got
    assert errors_of(tmp_path) == {gone: "not_found_or_deleted"}


def cascade_truth(box: Any, seed: str, depth: int, include: str, max_tweets: int | None = None) -> dict[str, Any]:
    return box.get(f"/_sandbox/truth/bsky/cascade?seeds={seed}&depth={depth}&include={include}"
                   + (f"&max_tweets={max_tweets}" if max_tweets else ""))


def expanded_posts(out: Path) -> list[str]:
    return list(dict.fromkeys(line["__tweetform"]["post"] for lines in bucket(out, "cascades").values() for line in lines
                              if "post" in line["__tweetform"]))


def assert_tree_equals_truth(out: Path, tmp_path: Path, expected: dict[str, Any], job: str | None = None) -> None:
    assert sorted(expanded_posts(out)) == sorted(expected["expanded"])
    export(out, *(("--job", job) if job else ()), "--format", "jsonl", "-o", str(tmp_path / "c.jsonl"))
    nodes, edges = read_jsonl(tmp_path / "c.jsonl")
    assert {n: d["depth"] for n, d in nodes.items() if d["kind"] == "post"} == expected["posts"]
    assert {n: d["depth"] for n, d in nodes.items() if d["kind"] == "user"} == expected["users"]
    assert edges == {tuple(e) for e in expected["edges"]}
    assert sorted(n for n, d in nodes.items() if d.get("parent_missing")) == expected["parent_missing"]
    page_ids = [line["__tweetform"]["page_id"] for lines in bucket(out, "cascades").values() for line in lines]
    assert len(page_ids) == len(set(page_ids)), "a page was written twice"


def test_depth_3_cascade_equals_truth(box: Any, tmp_path: Path) -> None:
    """Replies (the thread under each seed and each non-reply), quotes, reposts and likes to depth 3: the
    posts expanded, every post and user with its depth and every edge by kind, through ``scrapy export cascade``."""
    seed = engaged(box)[0]
    expected = cascade_truth(box, seed, 3, ALL)
    assert {k for _, _, k in expected["edges"]} == {"reply", "quote", "repost", "like"}
    assert any(d == 2 for d in expected["posts"].values())  # level 2 finds posts, level 3 expands them
    out = tmp_path / "data"
    done = bluesky_crawl(box, "cascade", out, tweet_id=seed, depth=3, include=ALL)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "no cost (Bluesky: $0 a request)" in done.stderr
    assert_tree_equals_truth(out, tmp_path, expected)
    assert all(line["__tweetform"]["api_version"] == "bluesky" for lines in bucket(out, "cascades").values() for line in lines)
    export(out, "--format", "gexf", "-o", str(tmp_path / "c.gexf"))
    import networkx as nx

    graph = nx.read_gexf(tmp_path / "c.gexf")
    assert int(graph.nodes[seed]["depth"]) == 0 and graph.nodes[seed]["author"].startswith("jack.")


def test_max_tweets_keeps_the_breadth_first_prefix(box: Any, tmp_path: Path) -> None:
    seed = engaged(box)[0]
    include = "replies,quotes,retweets"
    full = cascade_truth(box, seed, 2, include)["expanded"]
    expected = cascade_truth(box, seed, 2, include, max_tweets=5)
    assert expected["expanded"] == full[:5] and len(full) > 5
    out = tmp_path / "data"
    done = bluesky_crawl(box, "cascade", out, tweet_id=seed, depth=2, include=include, max_tweets=5)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_tree_equals_truth(out, tmp_path, expected)


def test_cascade_through_two_workers_one_killed_equals_truth(sandbox_factory: Any, redis_url: str, tmp_path: Path) -> None:
    """``scrapy push cascade --api bluesky`` to two workers; one is SIGKILLed while it holds requests: the
    other (and a new one) finish it, the tree equals the truth, no page written twice."""
    # workers pace through Redis at the lane's limit per window: ~700 requests at the default 3000 per
    # 5 minutes take 70 s; what is checked here is the kill, not the pacing (test_bluesky_lanes)
    box = sandbox_factory(*SMALL_WORLD, "--latency", "0.2", "--bluesky", "rate=30000")
    seed = engaged(box)[0]
    out = tmp_path / "data"
    env = {**worker_env(box, redis_url, out), "TWEETFORM_BLUESKY_APPVIEW": box.base, "TWEETFORM_BLUESKY_PDS": box.base}
    assert "pushed job bsky-cascade" in push(env, "cascade", "--api", "bluesky", "--tweet-id", seed, "--depth", "3",
                                             "--include", ALL, "--job", "bsky-cascade")
    run_two_workers_kill_one(box, env, redis_url)
    assert_tree_equals_truth(out, tmp_path, cascade_truth(box, seed, 3, ALL), job="bsky-cascade")


def test_cascade_resumed_after_sigint_fetches_no_page_again(sandbox_factory: Any, tmp_path: Path) -> None:
    """SIGINT mid-cascade, then the same command (its queue and claims kept under ``<output>/_jobs/<job>``):
    the tree equals the truth and every page was fetched once (the sandbox's count of answers)."""
    box = sandbox_factory(*SMALL_WORLD, "--latency", "0.1")
    seed = engaged(box)[0]
    out = tmp_path / "data"
    args = {"tweet_id": seed, "depth": 2, "include": "replies,quotes,retweets", "job": "bsky-resume"}
    env = {**crawl_env(box, out, []), "TWEETFORM_BLUESKY_APPVIEW": box.base, "TWEETFORM_BLUESKY_PDS": box.base,
           "TWEETFORM_API_BASE": "http://127.0.0.1:9"}
    cmd = [sys.executable, "-m", "scrapy", "crawl", "cascade", "-L", "INFO", "-s", "CONCURRENT_REQUESTS=4", "-a", "api=bluesky",
           *(x for k, v in args.items() for x in ("-a", f"{k}={v}"))]
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while lines_on_disk(out, "cascades") < 40 and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert first.poll() is None, "the crawl ended before it could be interrupted"
        first.send_signal(signal.SIGINT)
        assert first.wait(120) == exitcodes.INTERRUPTED, (tmp_path / "first.log").read_text()[-3000:]
    expected = cascade_truth(box, seed, 2, args["include"])
    assert 40 <= lines_on_disk(out, "cascades") < len(expected["expanded"])  # stopped mid-crawl
    second = bluesky_crawl(box, "cascade", out, **args)
    assert second.returncode == 0, second.stderr[-3000:]
    assert_tree_equals_truth(out, tmp_path, expected)
    assert box.counters()["requests"] == lines_on_disk(out, "cascades")  # no page fetched twice, nothing failed


def test_bad_bluesky_post_input_is_one_line(box: Any, tmp_path: Path) -> None:
    seed = engaged(box)[0]
    cases = [
        ("retweeted_by", {"tweet_id": "12345"}, "tweet_id '12345' is not a post URI"),
        ("liking_users", {"tweet_id": "at://did:plc:../../etc/app.bsky.feed.post/3aaaaaaaaaaaa"}, "is not a post URI"),
        ("quotes", {"tweet_id": seed.replace("app.bsky.feed.post", "app.bsky.feed.like")}, "is not a post URI"),
        ("cascade", {"tweet_id": f"{seed},{seed}/x"}, "is not a post URI"),
        ("conversation", {"tweet_id": seed, "max_tweets": "5"}, "max_tweets works with X's API only"),
        ("cascade", {"tweet_id": seed, "budget": "1"}, "Bluesky's API is free"),
    ]
    for spider, args, expected in cases:
        done = bluesky_crawl(box, spider, tmp_path / "out", **args)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == exitcodes.BAD_INPUT and len(lines) == 1 and expected in lines[0], (spider, args, done.stderr[-2000:])
    assert not (tmp_path / "out").exists()


def test_a_threads_missing_and_blocked_replies_are_errors_records(tmp_path: Path) -> None:
    """The sandbox's threads hide what is gone; the AppView's carry ``notFoundPost``/``blockedPost`` members
    (hand-made answer): each is an errors record, the page is written as sent, the found replies come in
    depth-first order at every level."""
    from scrapy.http import TextResponse

    from crawling import unit_crawler
    from tweetform.spiders.cascade import THREAD_MARK, found_uris
    from tweetform.spiders.paged import ConversationSpider

    did = "did:plc:" + "a" * 24
    uri = [f"at://{did}/app.bsky.feed.post/3kaaaaaaaaaa{c}" for c in "abcdef"]
    reply = {"reply": {"root": {"uri": uri[0]}, "parent": {"uri": uri[0]}}}

    def node(u: str, *replies: dict, is_reply: bool = True) -> dict:
        return {"$type": "app.bsky.feed.defs#threadViewPost", "post": {"uri": u, "record": reply if is_reply else {}},
                "replies": list(replies)}

    thread = node(uri[0],
                  node(uri[1], {"$type": "app.bsky.feed.defs#blockedPost", "uri": uri[3], "blocked": True, "author": {"did": did}},
                       node(uri[4])),
                  {"$type": "app.bsky.feed.defs#notFoundPost", "uri": uri[2], "notFound": True},
                  node(uri[5]), is_reply=False)
    body = {"thread": thread}
    assert found_uris("replies", body) == [uri[1], uri[4], uri[5]]
    assert found_uris("quotes", {"posts": [thread["post"], thread["replies"][0]["post"]]}) == [THREAD_MARK + uri[0], uri[1]]

    crawler = unit_crawler(ConversationSpider, {"TWEETFORM_OUTPUT_DIR": str(tmp_path), "TWEETFORM_API_BASE": "http://127.0.0.1:9",
                                                   "TWEETFORM_BLUESKY_APPVIEW": "http://127.0.0.1:9"})
    crawler._apply_settings()
    spider = crawler.spider = crawler._create_spider(api="bluesky", tweet_id=uri[0], job="unit")
    spider.finished = lambda request: None  # type: ignore[method-assign]
    job = spider.given_job
    spider.store.save(job)
    request = spider.api_request(job, "app.bsky.feed.getPostThread", {"uri": uri[0], "depth": 1000, "parentHeight": 0},
                                 key=post_key(uri[0]), extra={"target": uri[0]})
    raw = json.dumps(body).encode()
    items = list(spider.parse_page(TextResponse(request.url, body=raw, request=request, status=200)))
    assert [i["__tweetform"]["bucket"] for i in items] == ["conversations", "errors", "errors"]
    assert items[0].raw == raw and items[0]["__tweetform"]["key"] == post_key(uri[0])
    assert {(i["id"], i["reason"]) for i in items[1:]} == {(uri[3], "blocked"), (uri[2], "not_found")}
