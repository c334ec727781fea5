"""Bluesky account sessions against the sandbox's PDS (a real HTTP process): what the crawler does
when the PDS says a session's access token expired."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from email.utils import parsedate_to_datetime
from typing import Any

from conftest import SMALL_WORLD
from crawling import unit_crawler
from scrapy import Request
from scrapy.http import Response

from tweetform import state
from tweetform.api.bluesky import Sessions
from tweetform.middlewares.api_errors import ApiErrorMiddleware
from tweetform.middlewares.signing import META_ENDPOINT, META_SESSION
from tweetform.sandbox.credentials import DEMO_BLUESKY_ACCOUNTS

SEARCH = "app.bsky.feed.searchPosts"


def _http(method: str, url: str, body: dict | None, bearer: str | None) -> tuple[int, bytes, dict[str, str]]:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {bearer}"} if bearer else {})}
    data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, method=method, headers=headers), timeout=30) as r:
            return r.status, r.read(), {k.lower(): v for k, v in r.headers.items()}
    except urllib.error.HTTPError as err:
        return err.code, err.read(), {k.lower(): v for k, v in err.headers.items()}


async def _post(url: str, body: dict | None, bearer: str | None) -> tuple[int, Any, dict[str, str]]:
    status, raw, headers = await asyncio.to_thread(_http, "POST", url, body, bearer)
    return status, json.loads(raw or b"null"), headers


def test_late_expired_answers_for_an_old_token_do_not_throw_away_the_fresh_session(sandbox_factory: Any) -> None:
    """Two searches in flight with one access token; it expires. The first ExpiredToken answer
    refreshes the session; the second, late, names the old token and must not clear the new one
    (each late answer cost a refreshSession, then logins once a refresh token was used up)."""
    box = sandbox_factory(*SMALL_WORLD)
    account = DEMO_BLUESKY_ACCOUNTS[0]
    crawler = unit_crawler(settings_dict={"TWEETFORM_CREDENTIALS": [account.as_settings()], "TWEETFORM_BLUESKY_PDS": box.base})
    sessions = state.bluesky_sessions(crawler, [c for c in state.pool(crawler).credentials if c.kind == "bluesky"], _post)
    middleware = ApiErrorMiddleware(crawler)

    async def run() -> None:
        alias, old = await sessions.token()
        box.post("/_sandbox/clock", {"advance": 7300})  # past the access token's 2 hours
        url = f"{box.base}/xrpc/{SEARCH}?q=the"
        in_flight = []
        for _ in range(2):  # both signed with the old token, both answered ExpiredToken by the PDS
            request = Request(url, headers={"Authorization": f"Bearer {old}"}, meta={META_ENDPOINT: SEARCH, META_SESSION: alias})
            status, body, _ = await asyncio.to_thread(_http, "GET", url, None, old)
            in_flight.append((request, Response(url, status=status, body=body, request=request)))
        assert [json.loads(r.body)["error"] for _, r in in_flight] == ["ExpiredToken", "ExpiredToken"]
        fresh = []
        for request, response in in_flight:
            again = middleware.process_response(request, response)
            assert isinstance(again, Request)  # sent again, signed anew
            fresh.append((await sessions.token())[1])
        assert fresh[0] != old and fresh[1] == fresh[0]
        assert _http("GET", url, None, fresh[1])[0] == 200

    asyncio.run(run())
    counters = box.get("/_sandbox/bsky/counters")
    assert (counters["sessions_created"], counters["sessions_refreshed"]) == (1, 1)


def test_an_account_waiting_for_its_login_limit_does_not_hold_up_the_others(sandbox_factory: Any) -> None:
    """Account A's session is gone (access and refresh tokens expired) and its createSession limit is
    reached (1 per 5 minutes here): the next search needing A's turn gets B's live session instead of
    waiting 5 minutes, with every other search, behind A's wait."""
    box = sandbox_factory(*SMALL_WORLD)
    accounts = [a.as_settings() for a in DEMO_BLUESKY_ACCOUNTS[:2]]
    crawler = unit_crawler(settings_dict={"TWEETFORM_CREDENTIALS": accounts})
    creds = [c for c in state.pool(crawler).credentials if c.kind == "bluesky"]
    sessions = Sessions(creds, box.base, _post, limits=((1, 300.0),))

    async def run() -> list[str]:
        first, old = await sessions.token()
        box.post("/_sandbox/clock", {"advance": 91 * 86400})  # past the refresh token's 90 days too
        sessions.expired(first, old)
        second, live = await sessions.token()  # the other account logs in
        # A's turn: refresh refused, login not allowed for 5 minutes; B's session serves (the guard only stops a hang)
        third, token = await asyncio.wait_for(sessions.token(), 60)
        assert token == live
        return [first, second, third]

    order = asyncio.run(run())
    assert order == ["demo-bsky-1", "demo-bsky-2", "demo-bsky-2"]
    assert box.get("/_sandbox/bsky/counters")["sessions_created"] == 2


def test_an_account_answered_429_by_createsession_waits_for_its_reset_while_another_serves(sandbox_factory: Any) -> None:
    """The PDS counts createSession its own way (here A's 30 logins of the last 5 minutes were spent
    elsewhere): its 429 puts A aside until its ratelimit-reset, not the whole pool for a fixed minute."""
    box = sandbox_factory(*SMALL_WORLD)
    a, b = DEMO_BLUESKY_ACCOUNTS[:2]
    login = f"{box.base}/xrpc/com.atproto.server.createSession"
    spent = [_http("POST", login, {"identifier": a.handle, "password": a.app_password}, None)[0] for _ in range(30)]
    status, _, headers = _http("POST", login, {"identifier": a.handle, "password": a.app_password}, None)
    # the reset is still to come by the PDS's own clock: the Date of the same answer
    assert set(spent) == {200} and status == 429 and float(headers["ratelimit-reset"]) > parsedate_to_datetime(headers["date"]).timestamp()
    crawler = unit_crawler(settings_dict={"TWEETFORM_CREDENTIALS": [a.as_settings(), b.as_settings()]})
    sessions = Sessions([c for c in state.pool(crawler).credentials if c.kind == "bluesky"], box.base, _post)

    async def run() -> list[str]:
        return [(await asyncio.wait_for(sessions.token(), 30))[0] for _ in range(3)]  # the guard only stops a hang

    assert asyncio.run(run()) == [b.alias] * 3  # A's turn comes round, A still waits: B serves
    assert sessions.retired == {} and sessions.created == 1


def test_a_createsession_answered_429_does_not_spend_the_accounts_login_allowance(sandbox_factory: Any) -> None:
    """A createSession the PDS refused with 429 logged nobody in: it must not count against this process's
    own createSession limits (here 2 a day). Counted, the one real login after the reset used the day's
    last allowance, and the next time the session was gone the account waited a day."""
    box = sandbox_factory(*SMALL_WORLD, "--bluesky", "refresh_ttl=60")
    account = DEMO_BLUESKY_ACCOUNTS[0]
    login = f"{box.base}/xrpc/com.atproto.server.createSession"
    spent = [_http("POST", login, {"identifier": account.handle, "password": account.app_password}, None)[0] for _ in range(30)]
    assert set(spent) == {200}  # its 30 logins of these 5 minutes spent elsewhere
    crawler = unit_crawler(settings_dict={"TWEETFORM_CREDENTIALS": [account.as_settings()]})
    offset = [0.0]  # this process's clock, moved on with the sandbox's
    sessions = Sessions([c for c in state.pool(crawler).credentials if c.kind == "bluesky"], box.base, _post,
                        clock=lambda: time.time() + offset[0], limits=((2, 86400.0),))

    async def run() -> None:
        try:
            await asyncio.wait_for(sessions.token(), 2)  # answered 429: waits for the reset
            raise AssertionError("logged in although the PDS answered 429")
        except asyncio.TimeoutError:
            pass
        assert sessions.created == 0
        box.reset()  # the PDS's createSession windows are over (and its clock back to now)
        offset[0] += 301  # ... and this process is past the 429's ratelimit-reset
        alias, first = await asyncio.wait_for(sessions.token(), 30)
        box.post("/_sandbox/clock", {"advance": 7300})  # access (2 h) and refresh (60 s) tokens both expire
        offset[0] += 7300  # the same day: one login of the two left
        sessions.expired(alias, first)
        alias, second = await asyncio.wait_for(sessions.token(), 30)  # refresh refused, a login: allowed
        assert second != first

    asyncio.run(run())
    assert sessions.created == 2 and sessions.retired == {}
