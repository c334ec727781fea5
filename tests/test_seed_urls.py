"""Seed URLs pushed into ``tweetform:<spider>:start_urls`` (scrapy-redis's habit) become jobs.

A plain API URL (v1.1 or v2, any spider's endpoint, the host ignored) or scrapy-redis's JSON
``{"url": …, "meta": …}``: its arguments come from the URL, the job writes to the spider's
default bucket, anything else is dead-lettered with its reason — with a real worker, Redis and
the sandbox, the URLs pushed with ``redis-cli lpush`` as README shows.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis
from crawling import bucket, ids_of
from test_distributed import assert_network_equals_truth, start_workers, wait_all, worker_env

from tweetform.job import ArgumentError
from tweetform.spiders.lookup import TweetsSpider, UsersSpider
from tweetform.spiders.network import FollowersSpider, FriendsSpider
from tweetform.spiders.paged import ConversationSpider, CountsSpider, ListsSpider, QuotesSpider
from tweetform.spiders.search import SearchSpider
from tweetform.spiders.timeline import TimelineSpider
from tweetform.state.redis import keys
from tweetform.state.redis.jobs import parse_message

WORLD = ("--users", "3000", "--seed", "7", "--window", "1")


def lpush(redis_url: str, key: str, value: str) -> None:
    """What README shows: ``redis-cli -u $REDIS_URL lpush tweetform:<spider>:start_urls <url>``."""
    done = subprocess.run([shutil.which("redis-cli") or "redis-cli", "-u", redis_url, "lpush", key, value],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and done.stdout.strip().isdigit(), done.stdout + done.stderr


def test_seed_urls_pushed_with_redis_cli_are_crawled_into_the_default_buckets(sandbox_factory, redis_url: str, tmp_path: Path):
    box = sandbox_factory(*WORLD)
    examples = box.get("/_sandbox/examples")
    fan, friendly, other = examples["ordinary"][0], examples["ordinary"][1], examples["ordinary"][2]
    env = worker_env(box, redis_url, tmp_path)
    # a bare v2 followers URL (the real API's host: ignored, the sandbox is the configured base)
    lpush(redis_url, keys.jobs_inbox("followers"), f"https://api.x.com/2/users/{fan}/followers")
    # scrapy-redis's JSON: a v1.1 URL with its query, meta carrying the job's depth and id
    lpush(redis_url, keys.jobs_inbox("friends"), json.dumps({
        "url": f"https://api.twitter.com/1.1/friends/ids.json?user_id={friendly}&count=5000&stringify_ids=true",
        "meta": {"depth": 2, "job": "from-json"}}))
    # a v2 URL asking for user objects: followers as users, into the followers bucket
    lpush(redis_url, keys.jobs_inbox("followers"), f"https://api.x.com/2/users/{other}/followers?max_results=1000&user.fields=created_at")
    refused = {
        f"https://api.x.com/2/users/{fan}/following": "is for spider friends, not 'followers'",
        f"https://api.x.com/2/users/{fan}/followers?exclude=replies": "seed URL parameter 'exclude' is not one tweetform can honour",
        "https://api.x.com/2/users/me/followers": "seed URL path '/2/users/me/followers' is not an endpoint of any tweetform spider",
    }
    for url in refused:
        lpush(redis_url, keys.jobs_inbox("followers"), url)
    wait_all(start_workers(env, 1, True, spiders="friends,followers"))

    r = redis.Redis.from_url(redis_url)
    letters = [json.loads(x) for x in r.lrange(keys.dead_letter(), 0, -1)]
    assert sorted(letter["message"] for letter in letters) == sorted(refused)
    for letter in letters:
        assert refused[letter["message"]] in letter["reason"], letter
    # the bare followers URL: data_type=ids into follower_ids, one level, equal to the truth
    follower_ids = bucket(tmp_path, "follower_ids")
    assert set(follower_ids) == {str(fan)} and ids_of(follower_ids[str(fan)]) == box.truth("followers", fan)
    # the JSON message: friends of friendly to depth 2 (meta's depth), into friend_ids, job id from meta
    assert_network_equals_truth(box, tmp_path, friendly, 2)
    job = r.hgetall(keys.job("from-json"))
    assert job[b"state"] == b"done" and json.loads(job[b"args"])["depth"] == 2
    # user objects into the followers bucket
    users = bucket(tmp_path, "followers")
    assert set(users) == {str(other)} and ids_of(users[str(other)]) == box.truth("followers", other)
    assert all("created_at" in u for page in users[str(other)] for u in page["data"])


URLS: list[tuple[Any, str, dict[str, Any]]] = [
    (FollowersSpider, "https://api.x.com/2/users/12/followers", {"api": "2", "bucket": "follower_ids", "user_ids": [12], "data_type": "ids"}),
    (FollowersSpider, "https://api.x.com/2/users/12/followers?user.fields=created_at&pagination_token=AB",
     {"bucket": "followers", "data_type": "users"}),
    (FriendsSpider, "http://127.0.0.1:9/1.1/friends/list.json?screen_name=jack&count=200&skip_status=false",
     {"api": "1.1", "bucket": "friends", "screen_names": ["jack"], "data_type": "users"}),
    (FriendsSpider, '{"url": "https://api.x.com/2/users/12/following", "meta": {"depth": 3, "max_users": 50, "bucket": "mine"}}',
     {"bucket": "mine", "depth": 3, "max_users": 50}),
    (TimelineSpider, "https://api.twitter.com/1.1/statuses/user_timeline.json?user_id=12&since_id=99&include_rts=true",
     {"api": "1.1", "bucket": "timelines", "user_ids": [12], "since_id": 99}),
    (TimelineSpider, "https://api.x.com/2/users/12/tweets?start_time=2026-01-01T00:00:00Z&tweet.fields=id",
     {"api": "2", "start_time": "2026-01-01T00:00:00Z"}),
    (UsersSpider, "https://api.x.com/2/users?ids=12,13&user.fields=id", {"user_ids": [12, 13], "bucket": "users"}),
    (UsersSpider, "https://api.twitter.com/1.1/users/show.json?screen_name=jack", {"api": "1.1", "screen_names": ["jack"]}),
    (TweetsSpider, "https://api.x.com/2/tweets?ids=20", {"tweet_ids": [20], "bucket": "tweets"}),
    (SearchSpider, "https://api.x.com/2/tweets/search/all?query=from%3Ajack%20cats", {"query": "from:jack cats", "archive": True}),
    (SearchSpider, "https://api.twitter.com/1.1/search/tweets.json?q=cats&lang=en&result_type=recent",
     {"api": "1.1", "query": "cats", "lang": "en"}),
    (CountsSpider, "https://api.x.com/2/tweets/counts/recent?query=cats&granularity=day", {"query": "cats", "granularity": "day"}),
    (ListsSpider, "https://api.x.com/2/lists/84/tweets", {"list_ids": [84], "relation": "tweets", "bucket": "lists"}),
    (ListsSpider, "https://api.x.com/2/users/12/followed_lists", {"user_ids": [12], "relation": "followed"}),
    (QuotesSpider, "https://api.x.com/2/tweets/20/quote_tweets?max_results=100", {"tweet_ids": [20], "bucket": "quotes"}),
    (ConversationSpider, "https://api.x.com/2/tweets?ids=20,21", {"tweet_ids": [20, 21], "bucket": "conversations"}),
]


@pytest.mark.parametrize("spider,url,expected", URLS, ids=[f"{s.name}-{i}" for i, (s, _, _) in enumerate(URLS)])
def test_a_seed_url_is_the_job_its_endpoint_and_query_say(spider: Any, url: str, expected: dict[str, Any]):
    job = parse_message(url.encode(), spider, "2")
    assert job.spider == spider.name
    assert {name: getattr(job, name) for name in expected} == expected


@pytest.mark.parametrize("spider,raw,reason", [
    (FriendsSpider, "https://api.x.com/2/users/12/followers", "seed URL path '/2/users/12/followers' is for spider followers, not 'friends'"),
    (TweetsSpider, "https://api.x.com/2/tweets/20/quote_tweets", "is for spider quotes, not 'tweets'"),
    (FriendsSpider, "https://api.x.com/2/users/12/following?max_results=10&exclude=x", "seed URL parameter 'exclude'"),
    (TimelineSpider, "https://api.twitter.com/1.1/statuses/user_timeline.json?user_id=12&include_rts=false",
     "seed URL parameter 'include_rts'"),
    (FriendsSpider, "https://api.x.com/2/users/12/following/extra", "is not an endpoint of any tweetform spider"),
    (FriendsSpider, "https://api.twitter.com/1.1/friends/ids.json", "give user_id, screen_name or file=PATH"),
    (FriendsSpider, "https://api.twitter.com/1.1/friends/ids.json?user_id=1&user_id=2", "seed URL gives user_id more than once"),
    (FriendsSpider, '{"url": "https://api.x.com/2/users/12/following", "meta": {"user_id": 5}}', "meta gives 'user_id'"),
    (FriendsSpider, '{"url": "https://api.x.com/2/users/12/following", "meta": {"download_timeout": 5}}',
     "unknown argument 'download_timeout' for spider 'friends'"),
    (FriendsSpider, '{"url": "https://api.x.com/2/users/12/following", "meta": [1]}', "meta must be an object"),
    (FriendsSpider, '{"url": "https://api.x.com/2/users/12/following", "method": "POST"}', "method must be GET"),
    (FriendsSpider, '{"url": "https://api.x.com/2/users/12/following", "cookies": {}}', "field 'cookies' is not url, meta or method"),
    (FriendsSpider, '{"url": ""}', "needs a url string"),
    (QuotesSpider, "https://api.twitter.com/1.1/statuses/lookup.json?id=20", "is for spider tweets, not 'quotes'"),
])
def test_a_seed_url_that_is_no_job_is_refused_with_its_reason(spider: Any, raw: str, reason: str):
    with pytest.raises(ArgumentError) as refused:
        parse_message(raw, spider, "2")
    assert reason in str(refused.value) and "\n" not in str(refused.value)
