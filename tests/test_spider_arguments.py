"""Spider arguments: every mistake named in one line, before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tweetform.job import ArgumentError
from tweetform.spiders.lookup import TweetsSpider
from tweetform.spiders.network import FriendsSpider
from tweetform.spiders.search import SearchSpider, query_key
from tweetform.spiders.timeline import TimelineSpider


def test_friends_defaults_and_buckets():
    job = FriendsSpider.parse_arguments({"user_id": "12, 857699969263964161"})
    assert job.user_ids == [12, 857699969263964161] and job.depth == 1 and job.bucket == "friend_ids" and job.api == "2"
    assert FriendsSpider.parse_arguments({"user_id": "1", "data_type": "users"}).bucket == "friends"


def test_file_of_ids_and_names(tmp_path: Path):
    f = tmp_path / "seeds.txt"
    f.write_text("# seeds\n12\n\n@jack\n857699969263964161  # big\n")
    job = TimelineSpider.parse_arguments({"file": str(f)}, "1.1")
    assert job.user_ids == [12, 857699969263964161] and job.screen_names == ["jack"] and job.api == "1.1"
    f.write_text("12\nnot a name!\n")
    with pytest.raises(ArgumentError, match="line 2"):
        TimelineSpider.parse_arguments({"file": str(f)})


@pytest.mark.parametrize(
    "spider,args,message",
    [
        (FriendsSpider, {"user_id": "1", "max_users": "0"}, "max_users must be at least 1"),
        (FriendsSpider, {"user_id": "1", "data_type": "edges"}, "data_type must be ids or users"),
        (FriendsSpider, {"user_id": "1", "api": "3"}, "api must be 2, 1.1 or bluesky"),
        (FriendsSpider, {"user_id": "1", "job": "a/b"}, "job 'a/b'"),
        (FriendsSpider, {"screen_name": "way_too_long_screen_name"}, "not a valid screen name"),
        (FriendsSpider, {"file": "/nonexistent/ids.txt"}, "cannot be read"),
        (SearchSpider, {"query": "x", "geocode": "1,2,3km"}, "geocode works with api=1.1 only"),
        (SearchSpider, {"query": "x", "api": "1.1", "geocode": "100,2,3km"}, "geocode must be"),
        (SearchSpider, {"query": "x", "api": "1.1", "archive": "true"}, "needs api=2"),
        (SearchSpider, {"query": "x", "user_id": "1"}, "unknown argument 'user_id'"),
        (TweetsSpider, {"user_id": "1"}, "unknown argument 'user_id'"),
        (TweetsSpider, {}, "give tweet_id"),
        (TimelineSpider, {"user_id": "1", "since_id": "abc"}, "'abc' is not an id"),
    ],
)
def test_bad_arguments(spider, args, message):
    with pytest.raises(ArgumentError, match=message.replace("(", r"\(").replace(")", r"\)")):
        spider.parse_arguments(args)


def test_search_key_is_md5_of_query_like_tweetf0rm():
    assert query_key("data") == "8d777f385d3dfec8815d20f7496026dc"
    assert query_key("data", lang="en") != query_key("data")
