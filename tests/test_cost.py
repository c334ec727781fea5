"""Cost accounting: the billing rule on pages built by hand, and the per-page bookkeeping."""

from __future__ import annotations

from scrapy.http import Request, TextResponse

from crawling import unit_crawler

from tweetform.cost import dollars, micro, usd
from tweetform.cost.ledger import CostLedger, DayOf
from tweetform.cost.middleware import CostMiddleware, app_names
from tweetform.cost.rule import max_cost, resources
from tweetform.credentials import parse_credentials
from tweetform.items import make_error, make_page


def test_resources_follow_the_billing_rule():
    v2 = {"data": [{"id": "1"}, {"id": "2"}], "includes": {"users": [{"id": "9"}], "tweets": [{"id": "50"}],
                                                          "media": [{"media_key": "3_1"}]}, "meta": {"result_count": 2}}
    assert list(resources("/2/tweets", v2)) == [("post", ["1", "2"]), ("user", ["9"]), ("post", ["50"])]
    assert list(resources("/2/users/:id/following", {"data": [{"id": "7"}]})) == [("follow", ["7"])]
    assert list(resources("/friends/ids", {"ids": ["4", "5"], "next_cursor": 0})) == [("follow", ["4", "5"])]
    assert list(resources("/followers/list", {"users": [{"id": 4, "id_str": "4"}]})) == [("follow", ["4"])]
    assert list(resources("/statuses/user_timeline", {"page": [{"id_str": "8"}]})) == [("post", ["8"])]
    assert list(resources("/search/tweets", {"statuses": [{"id_str": "8"}]})) == [("post", ["8"])]
    assert list(resources("/statuses/lookup", {"id": {"8": {"id_str": "8"}, "9": None}})) == [("post", ["8"])]
    assert list(resources("/users/lookup", {"page": [{"id_str": "3"}]})) == [("user", ["3"])]
    assert list(resources("/2/users", {"errors": [{"title": "Not Found Error"}]})) == [("user", [])]


def test_max_cost_bounds_a_request():
    assert max_cost("/2/users/:id/following", {"max_results": 1000}) == 1000 * 0.010
    assert max_cost("/friends/ids", {"count": 5000}) == 5000 * 0.010
    assert max_cost("/2/users", {"ids": "1,2,3"}) == 3 * 0.010
    # expansions: one includes object per data object and billable expansion
    assert abs(max_cost("/2/tweets", {"ids": "1,2", "expansions": "author_id,referenced_tweets.id,attachments.media_keys"})
               - 2 * (0.005 + 0.010 + 0.005)) < 1e-9
    assert max_cost("/application/rate_limit_status", {}) == 0


def test_ledger_dedupes_per_app_kind_and_utc_day():
    ledger = CostLedger()
    assert ledger.charge("j", "app1", "2026-03-01", [("follow", ["1", "2"])]) == micro(0.02)
    assert ledger.charge("j", "app1", "2026-03-01", [("follow", ["2", "3"])]) == micro(0.01)  # 2 billed already today
    assert ledger.charge("j", "app1", "2026-03-01", [("user", ["2"])]) == micro(0.01)  # another kind
    assert ledger.charge("j", "app2", "2026-03-01", [("follow", ["2"])]) == micro(0.01)  # another app
    assert ledger.charge("j", "app1", "2026-03-02", [("follow", ["1"])]) == micro(0.01)  # the next day
    assert ledger.total == micro(0.06) and ledger.by_app == {"app1": micro(0.05), "app2": micro(0.01)}
    assert ledger.resources == {"follow": 5, "user": 1}
    ledger.charge("j", "app1", "2026-03-03", [("post", ["1"])])
    assert {k[2] for k in ledger.seen} == {"2026-03-02", "2026-03-03"}  # older days forgotten
    assert dollars(micro(1234.567)) == "$1,234.57" and dollars(micro(0.005)) == "$0.005" and usd(5000) == 0.005


def test_day_is_the_api_clock():
    day = DayOf()
    assert day(b"Tue, 01 Dec 2026 23:59:59 GMT") == "2026-12-01"
    assert day(b"Wed, 02 Dec 2026 00:00:01 GMT") == "2026-12-02"
    assert len(day(None)) == 10


def test_app_of_a_credential_is_its_consumer_key():
    creds = parse_credentials([
        {"alias": "alice", "app_key": "K1", "app_secret": "s", "oauth_token": "t1", "oauth_token_secret": "s"},
        {"alias": "bob", "app_key": "K1", "app_secret": "s", "oauth_token": "t2", "oauth_token_secret": "s"},
        {"alias": "lab-app", "app_key": "K2", "app_secret": "s"},
        {"alias": "bearer-only", "bearer_token": "b"},
    ])
    assert app_names(creds) == {"alice": "alice", "bob": "alice", "lab-app": "lab-app", "bearer-only": "bearer-only"}
    creds.append(parse_credentials([{"alias": "lab-bearer", "app_key": "K1", "app_secret": "s", "bearer_token": "b"}])[0])
    assert app_names(creds)["bob"] == "lab-bearer"  # an app is named by its app-only credential


def _page(body: bytes, endpoint: str, credential: str, job: str = "j1", date: bytes = b"Tue, 01 Dec 2026 12:00:00 GMT"):
    import orjson

    request = Request("http://127.0.0.1/x", meta={"tweetform_endpoint": endpoint, "tweetform_ctx": {"job": job}})
    response = TextResponse(request.url, body=body, headers={"Date": date}, request=request)
    prov = {"endpoint": endpoint, "job": job, "credential": credential, "bucket": "friend_ids", "key": "1"}
    return response, make_page(orjson.loads(body), body, prov)


def test_middleware_charges_pages_not_error_records():
    creds = [{"alias": "alice", "app_key": "K1", "app_secret": "s", "oauth_token": "t1", "oauth_token_secret": "s"},
             {"alias": "bob", "app_key": "K1", "app_secret": "s", "oauth_token": "t2", "oauth_token_secret": "s"}]
    crawler = unit_crawler(settings_dict={"TWEETFORM_CREDENTIALS": creds})
    crawler.stats.open_spider()
    mw = CostMiddleware(crawler)
    response, page = _page(b'{"data":[{"id":"1"},{"id":"2"}],"meta":{"result_count":2}}', "/2/users/:id/following", "alice")
    error = make_error("protected", "3", 200, None, "", None, {"bucket": "errors", "job": "j1", "endpoint": "/2/users/:id/following"})
    assert list(mw.process_spider_output(response, [page, error])) == [page, error]
    response, page = _page(b'{"data":[{"id":"2"},{"id":"4"}],"meta":{}}', "/2/users/:id/following", "bob")
    list(mw.process_spider_output(response, [page]))  # same app, same day: 2 is not billed again
    stats = crawler.stats.get_stats()
    assert stats["tweetform/cost/usd"] == 0.03 and stats["tweetform/cost/usd/alice"] == 0.03
    assert stats["tweetform/cost/resources/follow"] == 3 and "tweetform/cost/usd/bob" not in stats


def test_usage_capped_is_not_a_rate_limit():
    from tweetform.api import errors
    from tweetform.sandbox.errors import usage_capped

    v2 = usage_capped("2", "credits").body
    v1 = usage_capped("1.1", "post_cap").body
    assert errors.classify(429, v2, "2").kind == errors.USAGE_CAPPED
    assert errors.classify(429, v1, "1.1").kind == errors.USAGE_CAPPED
    assert errors.classify(429, {"errors": [{"message": "Rate limit exceeded", "code": 88}]}, "1.1").kind == errors.RATE_LIMITED
    assert errors.classify(429, {"title": "Too Many Requests", "type": "about:blank", "status": 429}, "2").kind == errors.RATE_LIMITED
