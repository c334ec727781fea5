"""The sandbox enforces the one rate-limit table (tweetform/api/limits.py): 2026 v2 values by default."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tweetform.api import limits
from test_sandbox_api import SMALL, app_auth, body, user_auth

# (path, params, endpoint key in the table); every one answers 200 for user 12 (jack)
ENDPOINTS = [
    ("/2/users/12/following", None, "/2/users/:id/following"),
    ("/2/users/12/followers", None, "/2/users/:id/followers"),
    ("/2/users/12/tweets", None, "/2/users/:id/tweets"),
    ("/2/tweets/search/recent", {"query": "data"}, "/2/tweets/search/recent"),
    ("/2/users", {"ids": "12"}, "/2/users"),
    ("/2/users/by", {"usernames": "jack"}, "/2/users/by"),
    ("/1.1/friends/ids.json", {"user_id": "12"}, "/friends/ids"),
    ("/1.1/statuses/user_timeline.json", {"user_id": "12"}, "/statuses/user_timeline"),
]


@pytest.mark.parametrize("path,params,endpoint", ENDPOINTS)
def test_default_limits_are_the_table(sandbox_factory: Any, path: str, params: Any, endpoint: str) -> None:
    """x-rate-limit-limit of each pool equals the table's (user, app) pair (2026: follows 300, not 15)."""
    box = sandbox_factory(*SMALL)
    user, app = limits.limits_of(endpoint)
    for auth, expected in ((user_auth(), user), (app_auth(), app)):
        r = requests.get(box.url(path), params=params, auth=auth, timeout=30)
        body(r)
        assert r.status_code == 200, (path, r.text[:200])
        assert int(r.headers["x-rate-limit-limit"]) == expected


def test_limit_flag_overrides_the_table(sandbox_factory: Any) -> None:
    box = sandbox_factory(*SMALL, "--limit", "/2/users/:id/following=4,6")
    for auth, expected in ((user_auth(), 4), (app_auth(), 6)):
        r = requests.get(box.url("/2/users/12/following"), auth=auth, timeout=30)
        assert int(r.headers["x-rate-limit-limit"]) == expected
