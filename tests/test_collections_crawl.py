"""The collection spiders (issue 17) crawl the sandbox on v2: output compared with its ground truth
(ids as multisets, no page written twice), and what the six spiders always had (errors, limits, exit codes)."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest
from crawling import bucket, demo_credentials, ids_of, run_crawl

FAST = ("--users", "3000", "--seed", "7", "--window", "1", "--limit", "/2/tweets/search/all=300,300")


@pytest.fixture
def box(sandbox_factory):
    return sandbox_factory(*FAST)


def ok(result) -> None:
    assert result.returncode == 0, result.stderr[-3000:]


def no_page_twice(pages: dict[str, list[dict]]) -> None:
    ids = [line["__tweetform"]["page_id"] for lines in pages.values() for line in lines]
    assert len(ids) == len(set(ids))


def test_timeline_archive_goes_past_the_3200_cap(box, tmp_path: Path):
    """timeline -a archive=true: full-archive search from:ID (twarc2 timeline --use-search) reaches every tweet."""
    uid = next(u for u in box.get("/_sandbox/examples")["long_timeline"] if box.get(f"/_sandbox/truth/user/{u}")["statuses_count"] > 3200)
    ok(run_crawl(box, "timeline", tmp_path, user_id=uid, archive="true"))
    pages = bucket(tmp_path, "timelines")
    truth = box.get(f"/_sandbox/truth/search?query=from:{uid}&archive=1")["ids"]
    assert len(truth) > 3200
    assert Counter(ids_of(pages[str(uid)])) == Counter(truth)
    assert {line["__tweetform"]["endpoint"] for line in pages[str(uid)]} == {"/2/tweets/search/all"}
    no_page_twice(pages)


def test_search_file_each_query_its_own_key(box, tmp_path: Path):
    """search -a file=queries.txt: one query a line, each under its own key (twarc2 searches); '#' is a hashtag."""
    queries = ["data", "#science", "climate model"]
    (tmp_path / "q.txt").write_text("\n".join(queries) + "\n\n")
    out = tmp_path / "out"
    ok(run_crawl(box, "search", out, file=tmp_path / "q.txt"))
    pages = bucket(out, "search")
    assert set(pages) == {hashlib.md5(q.encode()).hexdigest() for q in queries}
    for q in queries:
        truth = box.get(f"/_sandbox/truth/search?query={q.replace('#', '%23').replace(' ', '+')}")["ids"]
        assert Counter(ids_of(pages[hashlib.md5(q.encode()).hexdigest()])) == Counter(truth), q
    no_page_twice(pages)


@pytest.mark.parametrize("spider,args", [("liking_users", {"tweet_id": "20"}), ("liked_tweets", {"user_id": "12"})])
def test_user_context_endpoint_with_only_a_bearer_stops_with_one_line(box, tmp_path: Path, spider, args):
    """A bearer token is never chosen for liking_users/liked_tweets: with no user credential the crawl
    stops before any request, exit 4, one line naming what is missing (and no secret)."""
    result = run_crawl(box, spider, tmp_path, credentials=demo_credentials("demo-app-1"), **args)
    assert result.returncode == 4, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "needs a user-context credential" in lines[0] and "demo-app-1" in lines[0], lines
    assert box.counters()["requests"] == 0  # nothing was sent (preflight's reachability probe is not an API call)
