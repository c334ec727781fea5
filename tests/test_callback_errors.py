"""CallbackErrorMiddleware on hand-made Request/Response objects (the crawl tests are in test_exit_codes.py)."""

from __future__ import annotations

from pathlib import Path

from scrapy.exceptions import CloseSpider, IgnoreRequest
from scrapy.http import Request, TextResponse

from crawling import unit_crawler

from tweetform.middlewares.callback_errors import STAT_PREFIX, CallbackErrorMiddleware
from tweetform.spiders.network import FriendsSpider


def setup(tmp_path: Path):
    crawler = unit_crawler(FriendsSpider, {"TWEETFORM_OUTPUT_DIR": str(tmp_path), "TWEETFORM_API_BASE": "http://127.0.0.1:9",
                                        "TWEETFORM_API_VERSION": "2"})
    crawler._apply_settings()
    spider = crawler.spider = crawler._create_spider(user_id="12", job="unit")
    acked: list[str] = []
    spider.finished = lambda request: acked.append(request.url)  # type: ignore[method-assign]
    job = spider.given_job
    spider.store.save(job)
    request = spider.api_request(job, "/2/users/:id/following", {"max_results": 1000}, key="12", path_id=12, source=12)
    response = TextResponse(request.url, body=b'{"data": []}', request=request, status=200)
    return crawler, spider, CallbackErrorMiddleware.from_crawler(crawler), response, acked


def test_an_exception_becomes_one_failed_record_counted_and_acked(tmp_path: Path):
    crawler, spider, mw, response, acked = setup(tmp_path)
    out = list(mw.process_spider_exception(response, KeyError("id")))
    assert len(out) == 1
    record = out[0]
    assert (record["reason"], record["id"], record["status"], record["exception"]) == ("failed", "12", 200, "KeyError")
    assert record["message"] == "KeyError while handling the page: 'id'"
    assert record["__tweetform"]["bucket"] == "errors" and record["__tweetform"]["job"] == "unit"
    assert crawler.stats.get_value("tweetform/pages/failed") == 1
    assert crawler.stats.get_value(STAT_PREFIX + "KeyError") == 1
    assert acked == [response.url] and spider.pages_failed == 1


def test_scrapy_own_exceptions_and_foreign_pages_are_left_to_scrapy(tmp_path: Path):
    crawler, spider, mw, response, acked = setup(tmp_path)
    assert mw.process_spider_exception(response, CloseSpider("stop")) is None
    foreign = TextResponse("http://127.0.0.1:9/robots.txt", body=b"", request=Request("http://127.0.0.1:9/robots.txt"))
    assert mw.process_spider_exception(foreign, ValueError("x")) is None
    assert acked == [] and crawler.stats.get_value("tweetform/pages/failed") is None


def test_a_job_gone_is_acked_without_a_record(tmp_path: Path):
    crawler, spider, mw, response, acked = setup(tmp_path)
    assert list(mw.process_spider_exception(response, IgnoreRequest("job 'unit' is gone"))) == []
    assert acked == [response.url] and crawler.stats.get_value("tweetform/pages/failed") is None


def test_an_errback_that_raises_is_recorded_too(tmp_path: Path):
    """Scrapy sends an errback's output straight to the engine, past the spider middlewares."""
    from twisted.internet.error import ConnectionRefusedError
    from twisted.python.failure import Failure

    crawler, spider, mw, response, acked = setup(tmp_path)

    def broken(fake, failure):
        raise ValueError("a bug in the failure path")
        yield

    spider._failed_for_good = broken  # type: ignore[method-assign]
    try:
        raise ConnectionRefusedError()
    except ConnectionRefusedError:
        failure = Failure()
    failure.request = response.request  # type: ignore[attr-defined]
    out = list(spider.on_failure(failure))
    assert [(r["reason"], r["exception"]) for r in out] == [("failed", "ValueError")]
    assert crawler.stats.get_value(STAT_PREFIX + "ValueError") == 1 and acked == [response.url]


def test_redis_away_is_not_the_pages_fault(tmp_path: Path):
    """Shared job state unreachable: the page is fetched again a little later, as callbacks do; nothing recorded."""
    import redis

    crawler, spider, mw, response, acked = setup(tmp_path)
    (again,) = mw.process_spider_exception(response, redis.ConnectionError("away"))
    assert again.url == response.url and again.dont_filter and again.meta["tweetform_not_before"] > 0
    assert acked == [] and crawler.stats.get_value("tweetform/pages/failed") is None


def test_only_an_unreachable_redis_counts_as_away():
    import redis

    from tweetform.state.redis.connection import redis_away, refusal

    for away in (redis.ConnectionError("x"), redis.TimeoutError("x"), redis.BusyLoadingError("x")):
        assert redis_away(away)
    for answer in (redis.ResponseError("OOM command not allowed when used memory > 'maxmemory'."),
                   redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"), ValueError("x")):
        assert not redis_away(answer)
    assert refusal(redis.ResponseError("OOM command not allowed when used memory > 'maxmemory'.")).startswith("Redis maxmemory reached")
    assert refusal(redis.ResponseError("WRONGTYPE Operation against a key\nmore")) == "Redis refused a command: WRONGTYPE Operation against a key"


def test_a_redis_error_answer_fails_the_page_instead_of_fetching_it_again(tmp_path: Path):
    """OOM, WRONGTYPE, a script error: Redis answered, so fetching (and paying for) the page again will not help."""
    import redis

    crawler, spider, mw, response, acked = setup(tmp_path)
    oom = redis.ResponseError("OOM command not allowed when used memory > 'maxmemory'.")
    (record,) = mw.process_spider_exception(response, oom)
    assert record["reason"] == "failed" and record["message"].startswith("Redis maxmemory reached")
    assert crawler.stats.get_value("tweetform/pages/failed") == 1 and acked == [response.url]
    # the spider's callbacks raise it on to the middleware instead of yielding the page again
    spider._parse_page = lambda r: (_ for _ in ()).throw(oom)  # type: ignore[method-assign]
    try:
        list(spider.parse_page(response))
    except redis.ResponseError:
        pass
    else:
        raise AssertionError("a Redis error answer was taken for Redis away")
