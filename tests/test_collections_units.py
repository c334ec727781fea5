"""Unit tests of the collection spiders' shared pieces (issue 17): arguments, page sizes, per-request billing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tweetform.api.endpoints import ENDPOINTS
from tweetform.cost.rule import max_cost, resources
from tweetform.job import ArgumentError, message_arguments
from tweetform.spiders.arguments import parse_args
from tweetform.spiders.base import shrink_page


def test_shrink_page_keeps_each_endpoints_minimum():
    """quote_tweets refuses max_results below 10, liked_tweets below 5: the row says so, the last page obeys."""
    assert shrink_page(ENDPOINTS["/2/tweets/:id/quote_tweets"], {"max_results": 100}, 3)["max_results"] == 10
    assert shrink_page(ENDPOINTS["/2/users/:id/liked_tweets"], {"max_results": 100}, 3)["max_results"] == 5
    assert shrink_page(ENDPOINTS["/2/tweets/:id/retweeted_by"], {"max_results": 100}, 3)["max_results"] == 3


def test_counts_are_billed_per_answer_with_data_never_deduplicated():
    page = {"data": [{"start": "a", "end": "b", "tweet_count": 4}], "meta": {"total_tweet_count": 4}}
    first, second = list(resources("/2/tweets/counts/recent", page)), list(resources("/2/tweets/counts/recent", page))
    assert [k for k, _ in first] == ["counts_recent"] and first[0][1] != second[0][1]
    assert list(resources("/2/tweets/counts/all", {"meta": {"total_tweet_count": 0}})) == []
    assert max_cost("/2/tweets/counts/all", {"query": "x"}) == pytest.approx(0.010)


def test_search_takes_a_file_of_queries_and_times(tmp_path: Path):
    queries = tmp_path / "q.txt"
    queries.write_text("#climate data\n\nfrom:12 lang:en\n")
    job = parse_args("search", {"file": str(queries), "start_time": "2026-11-01", "end_time": "2026-11-02T12:00:00Z"},
                     allowed={"start_time", "end_time"}, default_bucket="search", default_api="2", seeds="query")
    assert job.all_queries == ["#climate data", "from:12 lang:en"]  # '#' is a hashtag, not a comment
    assert (job.start_time, job.end_time) == ("2026-11-01T00:00:00Z", "2026-11-02T12:00:00Z")
    # a job message carries the queries themselves (read where the job was made), checked by JSON type
    again = parse_args("search", message_arguments({"queries": job.queries}), allowed=set(), default_bucket="search",
                       default_api="2", seeds="query")
    assert again.all_queries == job.all_queries
    with pytest.raises(ArgumentError, match="queries must be an array of strings"):
        message_arguments({"queries": "x"})
    with pytest.raises(ArgumentError, match="not before end_time"):
        parse_args("search", {"query": "x", "start_time": "2026-11-02", "end_time": "2026-11-01"},
                   allowed={"start_time", "end_time"}, default_bucket="search", default_api="2", seeds="query")
    with pytest.raises(ArgumentError, match="start_time must be an ISO 8601 time"):
        parse_args("search", {"query": "x", "start_time": "yesterday"},
                   allowed={"start_time"}, default_bucket="search", default_api="2", seeds="query")
    assert json.loads(message_arguments({"queries": ["a"]})["queries"]) == ["a"]


def test_collection_spiders_arguments():
    """v2 only; lists by relation (list seeds or user seeds); conversation by tweet or conversation id."""
    from tweetform.spiders.paged import ConversationSpider, CountsSpider, LikedTweetsSpider, ListsSpider, QuotesSpider

    with pytest.raises(ArgumentError, match="quotes works with api=2 or bluesky only"):
        QuotesSpider.parse_arguments({"tweet_id": "20", "api": "1.1"})
    assert QuotesSpider.parse_arguments({"tweet_id": "20"}, default_api="1.1").api == "2"
    # api=bluesky (or a bluesky default) where the spider has an AppView method; at:// seeds
    uri = "at://did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/app.bsky.feed.post/3kaaaaaaaaaaa"
    assert QuotesSpider.parse_arguments({"tweet_id": uri}, default_api="bluesky").uris == [uri]
    with pytest.raises(ArgumentError, match="liked_tweets works with api=2 only"):
        LikedTweetsSpider.parse_arguments({"user_id": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "api": "bluesky"})
    with pytest.raises(ArgumentError, match="lists needs relation= one of lookup, members"):
        ListsSpider.parse_arguments({"list_id": "5"})
    members = ListsSpider.parse_arguments({"list_id": "5,6", "relation": "members", "max_users": "10"})
    assert (members.list_ids, members.relation, members.bucket) == ([5, 6], "members", "lists")
    with pytest.raises(ArgumentError, match="unknown argument 'list_id' for spider 'lists'"):
        ListsSpider.parse_arguments({"list_id": "5", "relation": "owned"})
    assert ListsSpider.endpoints_for(ListsSpider.parse_arguments({"screen_name": "jack", "relation": "followed"})) == \
        ["/2/users/:id/followed_lists"]
    thread = ConversationSpider.parse_arguments({"conversation_id": "77", "archive": "true"})
    assert (thread.conversation_ids, thread.tweet_ids, thread.bucket) == ([77], [], "conversations")
    assert ConversationSpider.endpoints_for(thread) == ["/2/tweets/search/all"]
    with pytest.raises(ArgumentError, match="granularity must be minute, hour or day"):
        CountsSpider.parse_arguments({"query": "x", "granularity": "week"})
