"""The collection spiders (issue 17) crawl the sandbox on v2: output compared with its ground truth
(ids as multisets, no page written twice), and what the six spiders always had (errors, limits, exit codes)."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest
from crawling import bucket, demo_credentials, errors_of, ids_of, run_crawl

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


def engaged_tweet(box, uid: int = 12) -> int:
    """A recent tweet of the demo's seed user with replies, quotes, retweets and likes (the sandbox's pick)."""
    return box.get(f"/_sandbox/truth/engaged/{uid}")["ids"][0]


# spider, bucket, truth path, seed kind
TWEET_LISTS = [("quotes", "quotes", "quotes"), ("retweeted_by", "retweeted_by", "retweeters"), ("liking_users", "liking_users", "likers")]
USER_LISTS = [("liked_tweets", "liked_tweets", "liked"), ("mentions", "mentions", "mentions")]


@pytest.mark.parametrize("spider,bucket_name,truth", TWEET_LISTS)
def test_tweet_list_spiders_equal_truth(box, tmp_path: Path, spider, bucket_name, truth):
    """quotes, retweeted_by, liking_users of a tweet: every page to the end marker, ids as multisets equal
    to the truth, each page once; a tweet nobody engaged with is one empty page, a missing one an error."""
    seed = engaged_tweet(box)
    missing = box.get("/_sandbox/examples")["deleted"][0]  # an account id: as a tweet id, missing
    ok(run_crawl(box, spider, tmp_path, tweet_id=f"{seed},{missing}"))
    pages = bucket(tmp_path, bucket_name)
    expected = box.get(f"/_sandbox/truth/{truth}/{seed}")["ids"]
    assert expected, "the sandbox's engaged tweet has none: the test would prove nothing"
    assert Counter(ids_of(pages[str(seed)])) == Counter(expected)
    assert all(line["__tweetform"]["api_version"] == "2" and line["__tweetform"]["key"] == str(seed) for line in pages[str(seed)])
    assert errors_of(tmp_path).get(str(missing)) in ("not_found", "deleted")
    no_page_twice(pages)


@pytest.mark.parametrize("spider,bucket_name,truth", USER_LISTS)
def test_user_list_spiders_equal_truth(box, tmp_path: Path, spider, bucket_name, truth):
    """liked_tweets and mentions of user 12 (by screen name: resolved first), compared with the truth."""
    ok(run_crawl(box, spider, tmp_path, screen_name="jack"))
    pages = bucket(tmp_path, bucket_name)
    expected = box.get(f"/_sandbox/truth/{truth}/12")["ids"]
    if spider == "mentions":  # the API reaches a user's newest 800 mentions only
        expected = sorted(expected, reverse=True)[:800]
    assert expected
    assert Counter(ids_of(pages["12"])) == Counter(expected)
    no_page_twice(pages)


def test_max_tweets_stops_each_seed_and_asks_only_for_what_is_left(box, tmp_path: Path):
    """quotes -a max_tweets=15: 10 and then 10 again (quote_tweets refuses fewer than 10), not 100 and 100."""
    seed = engaged_tweet(box)
    ok(run_crawl(box, "quotes", tmp_path, tweet_id=seed, max_tweets=15))
    lines = bucket(tmp_path, "quotes")[str(seed)]
    assert [f"max_results={n}" in line["__tweetform"]["url"] for line, n in zip(lines, (15, 10))] == [True, True]
    assert len(ids_of(lines)) >= 15 and len(lines) == 2


def test_exports_of_the_collection_buckets(box, tmp_path: Path):
    """export tweets reads quotes pages, twarc2 csv (twarc-csv) reads the v2 tweet and user pages,
    export graph makes retweets and likes edges user → the tweet's author, export ids dehydrates."""
    import csv
    import subprocess
    import sys
    import warnings

    from crawling import ROOT, crawl_env
    from tweetform.export.files import bucket_files, iter_pages

    seed = engaged_tweet(box)
    out = tmp_path / "data"
    for spider in ("quotes", "retweeted_by", "liking_users"):
        ok(run_crawl(box, spider, out, tweet_id=seed))
    env = crawl_env(box, out)

    def export(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "scrapy", "export", *args], cwd=ROOT, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done

    export("tweets", "--bucket", "quotes", "--format", "csv", "-o", str(tmp_path / "quotes.csv"))
    with open(tmp_path / "quotes.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    quotes = box.get(f"/_sandbox/truth/quotes/{seed}")["ids"]
    assert sorted(int(r["id"]) for r in rows) == sorted(quotes)
    assert all(r["referenced_tweets.quoted.id"] == str(seed) for r in rows)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas deprecations inside twarc-csv
        from twarc_csv import DataFrameConverter

        quote_pages = [p for p in iter_pages(bucket_files(out, "quotes")) if p["__tweetform"]["endpoint"] != "/2/tweets"]
        user_pages = [p for p in iter_pages(bucket_files(out, "retweeted_by")) if p["__tweetform"]["endpoint"] != "/2/tweets"]
        prov = {f"__tweetform.{k}" for p in quote_pages + user_pages for k in p["__tweetform"]}
        # like_count is newer than twarc-csv's column list: named as an extra column, as twarc2 csv asks
        tweets = DataFrameConverter("tweets", allow_duplicates=True, extra_input_columns=",".join(
            sorted(prov | {"author.public_metrics.like_count"}))).process(quote_pages)
        users = DataFrameConverter("users", allow_duplicates=True, extra_input_columns=",".join(
            sorted(prov | {"public_metrics.like_count"}))).process(user_pages)
    assert sorted(int(i) for i in tweets["id"]) == sorted(quotes)
    assert sorted(int(i) for i in users["id"]) == sorted(box.get(f"/_sandbox/truth/retweeters/{seed}")["ids"])

    graph_file = tmp_path / "engagement.csv"
    export("graph", "--bucket", "retweeted_by", "--bucket", "liking_users", "--format", "csv", "-o", str(graph_file))
    with open(graph_file, newline="", encoding="utf-8") as fh:
        edges = {(r["Source"], r["Target"]) for r in csv.DictReader(fh)}
    engaged = set(box.get(f"/_sandbox/truth/retweeters/{seed}")["ids"]) | set(box.get(f"/_sandbox/truth/likers/{seed}")["ids"])
    assert edges == {(str(u), "12") for u in engaged if u != 12}  # the seed tweet is user 12's

    done = export("ids", "--bucket", "liking_users", "-o", str(tmp_path / "ids.txt"))
    written = (tmp_path / "ids.txt").read_text().split()
    assert sorted(map(int, written)) == sorted(box.get(f"/_sandbox/truth/likers/{seed}")["ids"] + [seed])
    assert "ids" in done.stderr


def owned_lists(box, uid: int = 12) -> list[int]:
    return box.get(f"/_sandbox/truth/owned_lists/{uid}")["ids"]


@pytest.mark.parametrize("relation,truth", [("members", "list_members"), ("followers", "list_followers"), ("tweets", "list_tweets")])
def test_lists_of_list_ids_equal_truth(box, tmp_path: Path, relation, truth):
    """lists -a list_id=… -a relation=members|followers|tweets: each list under its own key."""
    lists = owned_lists(box)
    ok(run_crawl(box, "lists", tmp_path, list_id=",".join(map(str, lists)), relation=relation))
    pages = bucket(tmp_path, "lists")
    assert set(pages) == {str(lid) for lid in lists}
    for lid in lists:
        assert Counter(ids_of(pages[str(lid)])) == Counter(box.get(f"/_sandbox/truth/{truth}/{lid}")["ids"]), lid
    no_page_twice(pages)


def test_lists_lookup_and_a_users_lists(box, tmp_path: Path):
    """relation=lookup: each list's object; relation=memberships|owned|followed of @jack (resolved first)."""
    lists = owned_lists(box)
    ok(run_crawl(box, "lists", tmp_path / "lookup", list_id=",".join(map(str, lists)), relation="lookup"))
    found = bucket(tmp_path / "lookup", "lists")
    assert {key: [p["data"]["id"] for p in lines] for key, lines in found.items()} == {str(lid): [str(lid)] for lid in lists}
    assert all(p["data"]["owner_id"] == "12" for lines in found.values() for p in lines)
    for relation, truth in (("memberships", "memberships"), ("owned", "owned_lists"), ("followed", "followed_lists")):
        out = tmp_path / relation
        ok(run_crawl(box, "lists", out, screen_name="jack", relation=relation))
        pages = bucket(out, "lists")
        assert Counter(ids_of(pages["12"])) == Counter(box.get(f"/_sandbox/truth/{truth}/12")["ids"]), relation
        no_page_twice(pages)


@pytest.mark.parametrize("args", [{"granularity": "hour"}, {"granularity": "day", "archive": "true", "start_time": "2026-08-01T00:00:00Z"}])
def test_counts_equal_truth(box, tmp_path: Path, args):
    """counts of a query: every bucket of every page (31 days a page) equals the truth, keyed like search."""
    ok(run_crawl(box, "counts", tmp_path, query="data", **args))
    (key, pages), = bucket(tmp_path, "counts").items()
    assert key == hashlib.md5(b"data").hexdigest()
    query = "&".join(f"{k}={v}" for k, v in {"query": "data", **args}.items())
    truth = box.get(f"/_sandbox/truth/counts?{query}")
    got = sorted((b for p in pages for b in p.get("data") or []), key=lambda b: b["start"])
    assert got == sorted(truth["buckets"], key=lambda b: b["start"])
    assert sum(p["meta"]["total_tweet_count"] for p in pages) == truth["total"] > 0
    assert len(pages) == (1 if "archive" not in args else 3)  # Aug 1 .. the world's now, Nov 1: 92 days, 31 a page
    no_page_twice({key: pages})


def test_conversation_from_a_reply_and_by_id(box, tmp_path: Path):
    """conversation -a tweet_id=<a reply>: its conversation_id looked up, then the root and the thread's
    search under the conversation's key; -a conversation_id= gives the same thread without the look-up."""
    root = engaged_tweet(box)
    thread = box.get(f"/_sandbox/truth/conversation/{root}")["ids"]
    assert thread
    ok(run_crawl(box, "conversation", tmp_path / "a", tweet_id=thread[-1]))
    pages = bucket(tmp_path / "a", "conversations")
    lines = pages[str(root)]
    searched = [line for line in lines if line["__tweetform"]["endpoint"] == "/2/tweets/search/recent"]
    assert Counter(ids_of(searched)) == Counter(thread)
    assert [ids_of([line]) for line in lines if line["__tweetform"]["endpoint"] == "/2/tweets"] == [[root]]
    no_page_twice(pages)
    ok(run_crawl(box, "conversation", tmp_path / "b", conversation_id=root))
    again = bucket(tmp_path / "b", "conversations")
    assert list(again) == [str(root)] and Counter(ids_of(again[str(root)])) == Counter(thread + [root])


def test_search_between_start_and_end_time_equals_counts(box, tmp_path: Path):
    """search -a start_time -a end_time: every tweet in the window, as many as counts says for it."""
    window = {"start_time": "2026-10-29T00:00:00Z", "end_time": "2026-10-30T12:00:00Z"}
    ok(run_crawl(box, "search", tmp_path, query="data", **window))
    (pages,) = bucket(tmp_path, "search").values()
    tweets = [t for p in pages for t in p.get("data") or []]
    assert all(window["start_time"] <= t["created_at"] < window["end_time"] for t in tweets)
    truth = box.get(f"/_sandbox/truth/counts?query=data&start_time={window['start_time']}&end_time={window['end_time']}")
    assert len({t["id"] for t in tweets}) == len(tweets) == truth["total"] > 0


def test_skip_known_leaves_out_seeds_whose_lists_are_in_the_bucket(box, tmp_path: Path):
    """quotes -a skip_known=true after an earlier job: only the new seed's list is fetched (and paid)."""
    seeds = box.get("/_sandbox/truth/engaged/12")["ids"][:3]
    ok(run_crawl(box, "quotes", tmp_path, tweet_id=",".join(map(str, seeds[:2]))))
    box.reset()
    result = run_crawl(box, "quotes", tmp_path, tweet_id=",".join(map(str, seeds)), skip_known="true")
    ok(result)
    assert "skip_known: 2 seed(s)" in result.stderr
    asked = [c for c in box.counters()["limits"] if c["endpoint"] == "/2/tweets/:id/quote_tweets"]
    assert sum(c["served"] for c in asked) == len(bucket(tmp_path, "quotes")[str(seeds[2])])
    for seed in seeds:
        assert Counter(ids_of(bucket(tmp_path, "quotes")[str(seed)])) == Counter(box.get(f"/_sandbox/truth/quotes/{seed}")["ids"])


def test_mentions_since_id_auto_goes_on_after_the_newest_in_the_bucket(box, tmp_path: Path):
    """mentions -a since_id=auto: the second job asks only for mentions newer than the first job's newest."""
    ok(run_crawl(box, "mentions", tmp_path, user_id=12, max_tweets=150, job="m1"))
    newest = max(ids_of(bucket(tmp_path, "mentions")["12"]))
    assert newest == max(box.get("/_sandbox/truth/mentions/12")["ids"])
    ok(run_crawl(box, "mentions", tmp_path, user_id=12, since_id="auto", job="m2"))
    second = [line for line in bucket(tmp_path, "mentions")["12"] if line["__tweetform"]["job"] == "m2"]
    assert [f"since_id={newest}" in line["__tweetform"]["url"] for line in second] == [True]
    assert ids_of(second) == []  # nothing newer in a world that did not move


def test_export_graph_of_list_members_and_followers(box, tmp_path: Path):
    """export graph of a lists bucket: edges member → list:<id> (relation member) and follower → list:<id>."""
    import subprocess
    import sys

    from crawling import ROOT, crawl_env

    lid = owned_lists(box)[0]
    out = tmp_path / "data"
    for relation in ("members", "followers"):
        ok(run_crawl(box, "lists", out, list_id=lid, relation=relation))
    done = subprocess.run([sys.executable, "-m", "scrapy", "export", "graph", "--bucket", "lists", "--format", "graphml",
                           "-o", str(tmp_path / "lists.graphml")], cwd=ROOT, env=crawl_env(box, out), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    import networkx as nx

    graph = nx.read_graphml(tmp_path / "lists.graphml")
    node = f"list:{lid}"
    members = {u for u, _, rel in graph.in_edges(node, data="relation") if rel == "member"}
    followers = {u for u, _, rel in graph.in_edges(node, data="relation") if rel == "follower"}
    assert members == {str(u) for u in box.get(f"/_sandbox/truth/list_members/{lid}")["ids"]}
    # an account both member and follower is one edge, with the relation of the page read first
    assert followers | members >= {str(u) for u in box.get(f"/_sandbox/truth/list_followers/{lid}")["ids"]}
    assert graph.nodes[node]["kind"] == "list"
