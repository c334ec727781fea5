"""A worker counts the endpoint queues created since its last look at the endpoint index.

Its list of endpoint queues is refreshed from Redis every ENDPOINT_REFRESH seconds; a worker that
decided "nothing left" on that cached list exited while a cascade's first lists were queued (its
own pushes to a new endpoint, or another worker's requests put back by a reap)."""
from __future__ import annotations

import redis
from crawling import unit_crawler
from scrapy import Request, Spider
from tweetform.state.redis.queue import InFlightQueue


def queue_of(redis_url: str, worker: str) -> InFlightQueue:
    crawler = unit_crawler(Spider, {"REDIS_URL": redis_url})
    return InFlightQueue(redis.Redis.from_url(redis_url), Spider.from_crawler(crawler, name="cascade"), worker)


def request(endpoint: str, n: int) -> Request:
    return Request(f"http://api.test{endpoint}?n={n}", meta={"tweetform_endpoint": endpoint})


def test_new_endpoint_queues_are_counted_before_the_next_refresh(redis_url: str):
    a, b = queue_of(redis_url, "a"), queue_of(redis_url, "b")
    assert all(a.push_many([a.prepare(request("/2/tweets", 1))]))
    assert a.endpoint_names() == ["/2/tweets"] and len(a) == 1  # a's list of queues, cached for a while
    # a's own push to a new endpoint counts at once
    assert all(a.push_many([a.prepare(request("/2/tweets/:id/quote_tweets", 2))]))
    assert len(a) == 2
    # another worker's queue (b's push, or a dead worker's request put back) counts on a fresh look,
    # the one a worker takes before deciding nothing is left
    assert all(b.push_many([b.prepare(request("/2/tweets/:id/retweeted_by", 3))]))
    a.endpoint_names(fresh=True)
    assert len(a) == 3
