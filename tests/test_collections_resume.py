"""The collection spiders (issue 17) on tweetform's rails: resumed from JOBDIR after SIGINT without
fetching a completed page again, and shared by two workers through ``scrapy push`` — output equal
to the sandbox's truth either way."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import pytest
from crawling import bucket, ids_of
from test_distributed import push, start_workers, wait_all, worker_env
from test_resume import fetched, interrupted, resumed

WORLD = ("--users", "3000", "--seed", "7", "--window", "1", "--latency", "0.15")
SEED_USERS = (12, 1004302403, 826270926390689794)  # users whose recent tweets have replies, quotes, retweets, likes


@pytest.fixture
def box(sandbox_factory):
    return sandbox_factory(*WORLD)


def engaged(box: Any) -> list[int]:
    return [t for u in SEED_USERS for t in box.get(f"/_sandbox/truth/engaged/{u}")["ids"]]


def tweet_truth(path: str) -> Callable[[Any, int], list[int]]:
    return lambda box, seed: box.get(f"/_sandbox/truth/{path}/{seed}")["ids"]


def mentions_truth(box: Any, uid: int) -> list[int]:
    return sorted(box.get(f"/_sandbox/truth/mentions/{uid}")["ids"], reverse=True)[:800]  # the API's newest 800


# spider -> (bucket, endpoint, seeds are tweets?, truth)
SPIDERS: dict[str, tuple[str, str, bool, Callable[[Any, int], list[int]]]] = {
    "quotes": ("quotes", "/2/tweets/:id/quote_tweets", True, tweet_truth("quotes")),
    "retweeted_by": ("retweeted_by", "/2/tweets/:id/retweeted_by", True, tweet_truth("retweeters")),
    "liking_users": ("liking_users", "/2/tweets/:id/liking_users", True, tweet_truth("likers")),
    "liked_tweets": ("liked_tweets", "/2/users/:id/liked_tweets", False, tweet_truth("liked")),
    "mentions": ("mentions", "/2/users/:id/mentions", False, mentions_truth),
}


def seeds_of(box: Any, spider: str) -> list[int]:
    return engaged(box) if SPIDERS[spider][2] else list(SEED_USERS)


def assert_equals_truth(box: Any, output: Path, spider: str, seeds: list[int]) -> int:
    """Every seed's list equals the truth (multisets), no page twice; returns the pages of the lists."""
    name, endpoint, _, truth = SPIDERS[spider]
    pages = bucket(output, name)
    lists = [line for key, lines in pages.items() if key.isdigit() and int(key) in seeds for line in lines
             if line["__tweetform"]["endpoint"] == endpoint]
    for seed in seeds:
        got = ids_of([line for line in pages.get(str(seed), []) if line["__tweetform"]["endpoint"] == endpoint])
        assert Counter(got) == Counter(truth(box, seed)), seed
    page_ids = [line["__tweetform"]["page_id"] for lines in pages.values() for line in lines]
    assert len(page_ids) == len(set(page_ids)), "a page was written twice"
    return len(lists)


def list_truth(kind: str) -> Callable[[Any, int], list[int]]:
    return lambda box, lid: box.get(f"/_sandbox/truth/{kind}/{lid}")["ids"]


def owned_lists(box: Any) -> list[int]:
    return box.get("/_sandbox/truth/owned_lists/12")["ids"]


def counts_check(box: Any, out: Path) -> int:
    (pages,) = bucket(out, "counts").values()
    truth = box.get("/_sandbox/truth/counts?query=data&granularity=day&archive=true&start_time=2026-01-01T00:00:00Z")
    assert sorted((b for p in pages for b in p["data"]), key=lambda b: b["start"]) == sorted(truth["buckets"], key=lambda b: b["start"])
    assert len({p["__tweetform"]["page_id"] for p in pages}) == len(pages)
    return len(pages)


def conversation_check(box: Any, out: Path) -> int:
    pages = bucket(out, "conversations")
    searched = 0
    for cid in engaged(box):
        lines = [line for line in pages[str(cid)] if line["__tweetform"]["endpoint"] == "/2/tweets/search/recent"]
        assert Counter(ids_of(lines)) == Counter(box.get(f"/_sandbox/truth/conversation/{cid}")["ids"]), cid
        searched += len(lines)
    page_ids = [line["__tweetform"]["page_id"] for lines in pages.values() for line in lines]
    assert len(page_ids) == len(set(page_ids))
    return searched


def lists_check(box: Any, out: Path) -> int:
    pages = bucket(out, "lists")
    for lid in owned_lists(box):
        assert Counter(ids_of(pages[str(lid)])) == Counter(box.get(f"/_sandbox/truth/list_tweets/{lid}")["ids"]), lid
    page_ids = [line["__tweetform"]["page_id"] for lines in pages.values() for line in lines]
    assert len(page_ids) == len(set(page_ids))
    return len(page_ids)


# spider -> (bucket, endpoint counted, arguments, check returning the pages it found of that endpoint)
OTHERS: dict[str, tuple[str, str, Callable[[Any], dict[str, str]], Callable[[Any, Path], int]]] = {
    "lists": ("lists", "/2/lists/:id/tweets",
              lambda box: {"list_id": ",".join(map(str, owned_lists(box))), "relation": "tweets"}, lists_check),
    "counts": ("counts", "/2/tweets/counts/all",
               lambda box: {"query": "data", "granularity": "day", "archive": "true", "start_time": "2026-01-01T00:00:00Z"},
               counts_check),
    "conversation": ("conversations", "/2/tweets/search/recent",
                     lambda box: {"conversation_id": ",".join(map(str, engaged(box)))}, conversation_check),
}


def arguments(box: Any, spider: str) -> dict[str, str]:
    if spider in OTHERS:
        return OTHERS[spider][2](box)
    return {"tweet_id" if SPIDERS[spider][2] else "user_id": ",".join(map(str, seeds_of(box, spider)))}


def check(box: Any, out: Path, spider: str) -> int:
    if spider in OTHERS:
        return OTHERS[spider][3](box, out)
    return assert_equals_truth(box, out, spider, seeds_of(box, spider))


ALL = [*SPIDERS, *OTHERS]


@pytest.mark.parametrize("spider", ALL)
def test_resumed_from_jobdir_after_sigint(box, tmp_path: Path, spider: str):
    """SIGINT after a few pages; the same command goes on: output equals the truth and no page of a
    list was fetched twice (a clean stop lets the pages in flight finish)."""
    args = arguments(box, spider)
    name, endpoint = (OTHERS[spider][:2] if spider in OTHERS else SPIDERS[spider][:2])
    out, jobdir = tmp_path / "out", tmp_path / "job"
    interrupted(box, out, jobdir, spider, name, 3, signal.SIGINT, **args)
    resumed(box, out, jobdir, spider, **args)
    pages = check(box, out, spider)
    assert fetched(box, endpoint) == pages


def test_pushed_jobs_shared_by_two_workers(box, redis_url: str, tmp_path: Path):
    """One job of each collection spider through ``scrapy push`` (arguments as --name value), two
    workers: every list equals the truth, each page once."""
    out = tmp_path / "out"
    env = worker_env(box, redis_url, out)
    for spider in ALL:
        options = [x for name, value in arguments(box, spider).items() for x in ("--" + name.replace("_", "-"), value)]
        push(env, spider, *options, "--job", f"pushed-{spider.replace('_', '-')}")
    wait_all(start_workers(env, 2, spiders=",".join(ALL)))
    for spider in ALL:
        check(box, out, spider)


def test_push_reads_a_file_of_queries_where_the_job_is_made(box, redis_url: str, tmp_path: Path):
    """scrapy push search/counts --file q.txt: the queries travel in the job message (the worker has no copy
    of the file); each query its own key, equal to the truth."""
    import hashlib

    queries = ["data", "#science"]
    (tmp_path / "q.txt").write_text("\n".join(queries) + "\n")
    out = tmp_path / "out"
    env = worker_env(box, redis_url, out)
    push(env, "search", "--file", str(tmp_path / "q.txt"), "--job", "qs")
    push(env, "counts", "--file", str(tmp_path / "q.txt"), "--granularity", "day", "--job", "qc")
    (tmp_path / "q.txt").unlink()
    wait_all(start_workers(env, 1, spiders="search,counts"))
    searched, counted = bucket(out, "search"), bucket(out, "counts")
    for q in queries:
        key = hashlib.md5(q.encode()).hexdigest()
        assert Counter(ids_of(searched[key])) == Counter(box.get(f"/_sandbox/truth/search?query={q.replace('#', '%23')}")["ids"])
        assert sum(p["meta"]["total_tweet_count"] for p in counted[key]) == \
            box.get(f"/_sandbox/truth/counts?query={q.replace('#', '%23')}&granularity=day")["total"]
