"""tweetform.api.errors: each documented answer means what twitter-api.md says."""

from __future__ import annotations

import pytest

from tweetform.api import errors
from tweetform.api.endpoints import ENDPOINTS, next_page_params

P = "https://api.twitter.com/2/problems/"


@pytest.mark.parametrize(
    "status,body,version,kind",
    [
        (401, {"request": "/1.1/friends/ids.json", "error": "Not authorized."}, "1.1", errors.PROTECTED),
        (404, {"errors": [{"code": 34, "message": "Sorry, that page does not exist."}]}, "1.1", errors.NOT_FOUND),
        (404, {"errors": [{"code": 50, "message": "User not found."}]}, "1.1", errors.NOT_FOUND),
        (404, {"errors": [{"code": 17, "message": "No user matches for specified terms."}]}, "1.1", errors.NOT_FOUND),
        (404, {"errors": [{"code": 144, "message": "No status found with that ID."}]}, "1.1", errors.DELETED),
        (403, {"errors": [{"code": 63, "message": "User has been suspended."}]}, "1.1", errors.SUSPENDED),
        (429, {"errors": [{"message": "Rate limit exceeded", "code": 88}]}, "1.1", errors.RATE_LIMITED),
        (429, {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429}, "2", errors.RATE_LIMITED),
        (401, {"errors": [{"code": 32, "message": "Could not authenticate you."}]}, "1.1", errors.AUTH),
        (401, {"errors": [{"code": 89, "message": "Invalid or expired token."}]}, "1.1", errors.AUTH),
        (400, {"errors": [{"code": 215, "message": "Bad Authentication data."}]}, "1.1", errors.AUTH),
        (403, {"errors": [{"code": 220, "message": "Your credentials do not allow access to this resource."}]}, "1.1", errors.FORBIDDEN),
        (401, {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}, "2", errors.AUTH),
        (403, {"title": "Unsupported Authentication", "type": P + "unsupported-authentication", "status": 403}, "2", errors.FORBIDDEN),
        (503, {"errors": [{"code": 130, "message": "Over capacity"}]}, "1.1", errors.SERVER),
        (500, None, "2", errors.SERVER),
        (200, None, "2", errors.INVALID_BODY),
        (200, {"data": []}, "2", errors.OK),
    ],
)
def test_classify(status, body, version, kind):
    assert errors.classify(status, body, version).kind == kind


def test_v2_partial_errors():
    body = {
        "data": [{"id": "1"}],
        "errors": [
            {"title": "Not Found Error", "type": P + "resource-not-found", "resource_type": "user", "resource_id": "2"},
            {"title": "Forbidden", "detail": "User has been suspended: [3].", "type": P + "resource-not-found", "resource_type": "user"},
            {"title": "Authorization Error", "type": P + "not-authorized-for-resource", "resource_type": "tweet"},
            {"title": "Not Found Error", "type": P + "resource-not-found", "resource_type": "tweet"},
        ],
    }
    assert [k for k, _ in errors.partial_errors(body)] == [errors.NOT_FOUND, errors.SUSPENDED, errors.PROTECTED, errors.DELETED]


def test_pagination_ends_only_at_the_end_marker():
    ids = ENDPOINTS["/friends/ids"]
    assert next_page_params(ids, {"user_id": 1}, {"ids": [1], "next_cursor": 5, "next_cursor_str": "5"}) == {"user_id": 1, "cursor": "5"}
    assert next_page_params(ids, {"user_id": 1}, {"ids": [], "next_cursor": 0, "next_cursor_str": "0"}) is None
    following = ENDPOINTS["/2/users/:id/following"]
    short = {"data": [{"id": "1"}] * 84, "meta": {"result_count": 84, "next_token": "abc"}}
    assert next_page_params(following, {"max_results": 100}, short) == {"max_results": 100, "pagination_token": "abc"}
    assert next_page_params(following, {}, {"meta": {"result_count": 0}}) is None
    recent = ENDPOINTS["/2/tweets/search/recent"]
    assert next_page_params(recent, {"query": "a"}, {"data": [{}] * 2, "meta": {"next_token": "t"}})["next_token"] == "t"
    timeline = ENDPOINTS["/statuses/user_timeline"]
    page = [{"id": 857699969263964161, "id_str": "857699969263964161"}, {"id": 857699969263964170, "id_str": "857699969263964170"}]
    assert next_page_params(timeline, {"count": 200}, page)["max_id"] == "857699969263964160"
    assert next_page_params(timeline, {"count": 200}, []) is None
    search = ENDPOINTS["/search/tweets"]
    meta = {"statuses": [], "search_metadata": {"next_results": "?max_id=99&q=a%20b&count=100&include_entities=1"}}
    assert next_page_params(search, {"q": "a b", "lang": "en"}, meta) == {"q": "a b", "lang": "en", "max_id": "99", "count": "100", "include_entities": "1"}
    assert next_page_params(search, {"q": "a"}, {"statuses": [], "search_metadata": {}}) is None
