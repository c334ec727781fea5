"""The sandbox bills like the API (pay-per-use, 2026): a ledger per app, the one price table,
one bill per resource per UTC day of the logical clock, caps answered with usage-capped 429s."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

import requests

from tweetform.api.pricing import PRICES_USD
from test_sandbox_api import PROBLEMS, SMALL, app_auth, body, user_auth

DAY = 86_400


def get(box: Any, path: str, params: Any = None, auth: Any = None) -> requests.Response:
    r = requests.get(box.url(path), params=params, auth=auth if auth is not None else user_auth(), timeout=30)
    body(r)
    return r


def ids(items: list[dict] | None) -> set[str]:
    return {str(i["id"]) for i in items or ()}


def windows(box: Any) -> list[dict]:
    """The rate windows the sandbox opened for demo-user-1 on /2/users (start and reset: its wall clock)."""
    return next(c for c in box.counters()["limits"] if (c["alias"], c["endpoint"]) == ("demo-user-1", "/2/users"))["windows"]


def usd(resources: dict[str, int]) -> float:
    return round(sum(n * PRICES_USD[k] for k, n in resources.items()), 6)


def test_ledger_bills_each_resource_once_per_app_and_day(sandbox_factory: Any) -> None:
    box = sandbox_factory(*SMALL)
    assert box.get("/_sandbox/billing") == {"total_usd": 0, "apps": {}, "credits": None, "post_cap": None}
    page = body(get(box, "/2/users/12/followers", {"max_results": 100}))["data"]
    follows = ids(page)
    # another user of the same app, same day: nothing new to bill
    assert body(get(box, "/2/users/12/followers", {"max_results": 100}, user_auth("demo-user-3")))["data"] == page
    # the app's bearer token belongs to the same app: v1.1 ids overlapping the v2 page are billed once
    v1 = body(get(box, "/1.1/followers/ids.json", {"user_id": 12, "count": 150}, app_auth("demo-app-1")))["ids"]
    follows |= {str(i) for i in v1}
    tweets = body(get(box, "/2/users/12/tweets", {"max_results": 20, "expansions": "author_id,referenced_tweets.id,referenced_tweets.id.author_id,entities.mentions.username"}))
    posts = ids(tweets["data"]) | ids(tweets["includes"].get("tweets"))
    users = ids(tweets["includes"]["users"])
    assert tweets["includes"].get("tweets") and len(users) >= 2  # expansions are billed as Post and User reads
    # failed answers are never billed: a 400, and a 200 that only carries errors (a protected account)
    assert get(box, "/2/users/abc/following").status_code == 400
    protected = box.get("/_sandbox/examples")["protected"][0]
    assert "data" not in body(get(box, f"/2/users/{protected}/following"))
    # nor is an answer the client did not receive whole
    box.post("/_sandbox/faults", {"truncate": 1})
    truncated = requests.get(box.url("/2/users/12/following"), auth=user_auth(), timeout=30)
    box.post("/_sandbox/faults", {"truncate": 0})
    assert truncated.status_code == 200
    # a second app pays for its own reads
    other = body(get(box, "/2/users/12/followers", {"max_results": 30}, user_auth("demo-user-6")))["data"]

    bill = box.get("/_sandbox/billing")
    first = {"follow": len(follows), "post": len(posts), "user": len(users)}
    assert bill["apps"]["demo-app-1"]["resources"] == first
    assert bill["apps"]["demo-app-1"]["usd"] == usd(first)
    assert bill["apps"]["demo-app-2"]["resources"] == {"follow": len(other)}
    assert bill["total_usd"] == round(usd(first) + len(other) * PRICES_USD["follow"], 6)
    # counters/reset (each test's clean slate) clears the ledger too
    box.reset()
    assert box.get("/_sandbox/billing")["apps"] == {}


def test_day_rollover_bills_again_and_rate_limits_stay_on_wall_time(sandbox_factory: Any) -> None:
    box = sandbox_factory(*SMALL)
    clock = box.get("/_sandbox/clock")
    params = {"ids": "12,13,14,15"}
    first = body(get(box, "/2/users", params))["data"]
    get(box, "/2/users", params)  # the same day: billed once
    window = windows(box)[0]
    # the logical clock starts at wall time: a rate window (wall time) opened after the clock was read
    assert clock["offset"] == 0 and clock["now"] <= window["start"] <= box.get("/_sandbox/clock")["now"]
    moved = box.post("/_sandbox/clock", {"advance": DAY})
    assert moved["offset"] == DAY and moved["day"] != clock["day"]
    r = get(box, "/2/users", params)  # OAuth timestamps are checked against wall time: still accepted
    assert r.status_code == 200
    # windows (1 s here) run on wall time: the one this answer counted in opened before the sandbox's
    # clock, less its day of offset, was read after it, and its reset (the header) is a second later
    reset = int(r.headers["x-rate-limit-reset"])
    now = box.get("/_sandbox/clock")
    (window,) = [w for w in windows(box) if w["reset"] == reset]
    assert window["start"] <= now["now"] - now["offset"] and reset <= window["start"] + 2
    bill = box.get("/_sandbox/billing")["apps"]["demo-app-1"]
    assert bill["resources"] == {"user": 2 * len(first)}
    assert bill["days"] == {clock["day"]: {"user": len(first)}, moved["day"]: {"user": len(first)}}
    assert box.post("/_sandbox/clock", {"offset": -DAY})["day"] < clock["day"]
    assert box.get("/_sandbox/clock")["offset"] == -DAY
    bad = requests.post(box.url("/_sandbox/clock"), json={"offset": "tomorrow"}, timeout=10)
    assert bad.status_code == 400 and box.get("/_sandbox/clock")["offset"] == -DAY
    box.reset()
    assert box.get("/_sandbox/clock")["offset"] == 0


def test_out_of_credits_is_usage_capped(sandbox_factory: Any) -> None:
    box = sandbox_factory(*SMALL, "--credits", "0.5", "--price", "follow=0.02")
    served = get(box, "/2/users/12/followers", {"max_results": 20})  # $0.40 of $0.50
    assert served.status_code == 200
    assert get(box, "/2/users/12/followers", {"max_results": 20, "pagination_token": body(served)["meta"]["next_token"]}).status_code == 200
    assert box.get("/_sandbox/billing")["apps"]["demo-app-1"]["usd"] > 0.5  # the crossing answer is served
    capped = get(box, "/2/users/12/following")
    problem = body(capped)
    assert capped.status_code == 429 and problem["type"] == PROBLEMS + "usage-capped" and problem["status"] == 429
    assert int(capped.headers["x-rate-limit-remaining"]) > 0  # not a rate limit: quota is left
    v1 = get(box, "/1.1/friends/ids.json", {"user_id": 12}, app_auth("demo-app-1"))
    assert v1.status_code == 429 and body(v1)["errors"][0]["code"] == 429  # the v1.1 shape, told apart from 88
    assert get(box, "/2/users/12/following", None, user_auth("demo-user-5")).status_code == 200  # other app
    assert get(box, "/2/usage/tweets", None, app_auth("demo-app-1")).status_code == 200  # usage stays readable
    # more credits bought mid-run: the app reads again, and what it read stays billed
    raised = box.post("/_sandbox/billing/limits", {"credits": 5})
    assert raised["credits"] == 5 and raised["apps"]["demo-app-1"]["usd"] > 0.5
    assert get(box, "/2/users/12/following").status_code == 200
    bad = requests.post(box.url("/_sandbox/billing/limits"), json={"credits": "lots"}, timeout=10)
    assert bad.status_code == 400 and box.get("/_sandbox/billing")["credits"] == 5
    box.post("/_sandbox/billing/reset")
    assert get(box, "/2/users/12/following").status_code == 200
    box.reset()  # each test's clean slate puts the flags' limits back
    assert box.get("/_sandbox/billing")["credits"] == 0.5


def test_monthly_post_cap_and_usage_endpoint(sandbox_factory: Any) -> None:
    # a frozen world: a month of evolution (31 generations to search) is not what this test is about
    box = sandbox_factory(*SMALL, "--post-cap", "15", "--evolve-every", "0")
    me = app_auth("demo-app-2")
    assert get(box, "/2/usage/tweets", None, user_auth()).status_code == 403  # app-only, as the API
    first = body(get(box, "/2/users/12/tweets", {"max_results": 10}, me))
    second = body(get(box, "/2/users/12/tweets", {"max_results": 10, "pagination_token": first["meta"]["next_token"]}, me))
    read = len(ids(first["data"]) | ids(second["data"]))
    assert read >= 15
    capped = get(box, "/2/tweets/search/recent", {"query": "data"}, me)
    assert capped.status_code == 429 and body(capped)["type"] == PROBLEMS + "usage-capped"
    assert get(box, "/2/users", {"ids": "12"}, me).status_code == 200  # the cap is on Post reads only
    usage = body(get(box, "/2/usage/tweets", {"usage.fields": "daily_project_usage,project_usage", "days": 3}, me))["data"]
    assert (usage["project_usage"], usage["project_cap"], usage["cap_reset_day"]) == (str(read), "15", 1)
    daily = usage["daily_project_usage"]
    assert daily["project_id"] == usage["project_id"] and [d["usage"] for d in daily["usage"]] == ["0", "0", str(read)]
    assert get(box, "/2/usage/tweets", {"days": 91}, me).status_code == 400
    assert get(box, "/2/usage/tweets", None, me).headers["x-rate-limit-limit"] == "50"  # the table's 50 / 15 min
    # the cap is monthly: a month later the app reads Posts again
    box.post("/_sandbox/clock", {"advance": 31 * DAY})
    assert get(box, "/2/tweets/search/recent", {"query": "data"}, me).status_code == 200
    assert body(get(box, "/2/usage/tweets", None, me))["data"]["project_usage"] != str(read)


@pytest.mark.parametrize("flags", [("--credits", "lots"), ("--post-cap", "-1"), ("--price", "tweet=0.1"),
                                   ("--price", "post=free"), ("--evolve-every", "-5")])
def test_bad_billing_flags_are_one_line_and_exit_2(flags: tuple[str, ...]) -> None:
    proc = subprocess.run([sys.executable, "-m", "tweetform.sandbox", "--port", "0", *flags],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("sandbox: bad configuration: ")
