"""Where a request is signed: every attempt, retries included, gets a fresh signature.

The lane (credential and auth kind) was reserved with its quota by the
scheduler's :class:`tweetform.state.local.priority_queue.QuotaAwarePriorityQueue`; this
middleware only turns it into an ``Authorization`` header: OAuth 1.0a for user
context, ``Bearer`` for app-only (fetching the token with ``POST oauth2/token``
once per app when only the app key and secret are configured; that request's
Basic auth is added here too, for each attempt).

Bluesky's lanes are client IPs (kind ``ip``): public methods go unsigned; one that
needs an account session (``Endpoint.session``: searchPosts) gets ``Bearer <accessJwt>``
of a Bluesky account, logged in, refreshed and logged in again by
:class:`tweetform.api.bluesky.Sessions` (on the PDS, ``TWEETFORM_BLUESKY_PDS``).

A request never keeps its ``Authorization`` outside the process: queued
requests are stored without it (:mod:`tweetform.requests_safety`), and every
attempt — a retry, a 429 put back, a request popped from Redis or a disk
queue — passes here and is signed again.
"""

from __future__ import annotations

import asyncio
import json
import logging

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.defer import deferred_from_coro

from tweetform.api.auth import basic_header, bearer_header, oauth1_header
from tweetform.api.bluesky import SessionError
from tweetform.api.endpoints import ENDPOINTS
from tweetform.credentials import Credential
from tweetform.meta import META_CREDENTIAL, META_ENDPOINT
from tweetform import state
from tweetform.quota.pool import CredentialPool, Lane, missing_auth
from tweetform.quota.gate import META_LANE, reservation_of

logger = logging.getLogger(__name__)
META_AUTH_KIND = "tweetform_auth_kind"
META_TOKEN_REQUEST = "tweetform_token_request"
META_SESSION = "tweetform_bluesky_session"  # (account alias) whose access token signed this attempt


class BearerTokenError(RuntimeError):
    pass


class SigningMiddleware:
    def __init__(self, crawler: Crawler, pool: CredentialPool, api_base: str) -> None:
        self.crawler = crawler
        self.pool = pool
        self.api_base = api_base.rstrip("/")
        self._token_locks: dict[str, asyncio.Lock] = {}
        accounts = [c for c in pool.credentials if c.kind == "bluesky"]
        self.sessions = state.bluesky_sessions(crawler, accounts, self._post_json)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "SigningMiddleware":
        return cls(crawler, state.pool(crawler), crawler.settings.get("TWEETFORM_API_BASE"))

    def lane_for(self, request: Request) -> Lane | None:
        """The reserved lane, or (without the quota queue) the first usable one."""
        reserved = reservation_of(request)
        if reserved is not None:
            return reserved.lane
        lanes = self.pool.lanes(ENDPOINTS[request.meta[META_ENDPOINT]])
        return lanes[0] if lanes else None

    async def process_request(self, request: Request) -> Request | None:
        if request.meta.get(META_TOKEN_REQUEST) == "bluesky":
            return None  # a session call: its own body or refresh token authenticates it
        if request.meta.get(META_TOKEN_REQUEST):
            self.sign_token_request(request)
            return None
        key = request.meta.get(META_ENDPOINT)
        if key is None:
            return None
        endpoint = ENDPOINTS[key]
        lane = self.lane_for(request)
        if lane is None:
            message = f"no usable credential left for {endpoint.key}"
            missing = missing_auth(endpoint, self.pool.credentials)  # none of the kind it needs, rather than all rejected
            if missing:
                message = missing
                self.crawler.stats.set_value("tweetform/credentials/missing", missing)
            self.stop(message)
            raise IgnoreRequest(message)
        if lane.alias in self.pool.retired:  # retired while this request waited: send it again later
            reserved = reservation_of(request)
            if reserved is not None:
                state.book(self.crawler).cancel(reserved)
            retry = request.replace(dont_filter=True)
            retry.meta.pop(META_LANE, None)
            return retry
        if lane.kind == "ip":
            return await self.sign_bluesky(request, lane)
        cred = self.pool.get(lane.alias)
        assert cred is not None
        if lane.kind == "app":
            token = await self.bearer_token(cred)
            request.headers["Authorization"] = bearer_header(token)
            request.meta[META_AUTH_KIND] = "app"
        else:
            content_type = request.headers.get("Content-Type", b"").decode()
            request.headers["Authorization"] = oauth1_header(cred, request.method, request.url, request.body, content_type)
            request.meta[META_AUTH_KIND] = "user"
        request.meta[META_CREDENTIAL] = cred.alias
        self.crawler.stats.inc_value(f"tweetform/quota/requests/{cred.alias}")
        return None

    async def sign_bluesky(self, request: Request, lane: Lane) -> None:
        """An IP lane: unsigned, or with an account session's access token where the method needs one."""
        request.meta[META_AUTH_KIND] = "ip"
        request.meta[META_CREDENTIAL] = lane.alias
        request.headers.pop("Authorization", None)
        if ENDPOINTS[request.meta[META_ENDPOINT]].session:
            try:
                alias, token = await self.sessions.token()
            except SessionError as exc:
                self.crawler.stats.set_value("tweetform/credentials/missing", str(exc))
                self.stop(str(exc))
                raise IgnoreRequest(str(exc)) from None
            request.headers["Authorization"] = f"Bearer {token}"
            request.meta[META_SESSION] = alias
            request.meta[META_CREDENTIAL] = alias
        self.crawler.stats.inc_value(f"tweetform/quota/requests/{request.meta[META_CREDENTIAL]}")

    async def _post_json(self, url: str, body: dict | None, bearer: str | None) -> tuple[int, object, dict[str, str]]:
        """A session call (createSession/refreshSession): never queued, its secrets only in this attempt."""
        headers = {"Content-Type": "application/json"}
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        request = Request(url, method="POST", body=json.dumps(body).encode() if body is not None else b"", headers=headers,
                          meta={META_TOKEN_REQUEST: "bluesky", "handle_httpstatus_all": True}, dont_filter=True)
        assert self.crawler.engine is not None
        response = await self.crawler.engine.download_async(request)
        try:
            parsed = json.loads(response.body)
        except ValueError:
            parsed = None
        return response.status, parsed, {k.lower(): v for k, v in response.headers.to_unicode_dict().items()}

    def sign_token_request(self, request: Request) -> None:
        """``POST oauth2/token``: its Basic auth too is added per attempt, never carried by the request."""
        cred = self.pool.get(request.meta.get(META_CREDENTIAL, ""))
        if cred is None or not (cred.app_key and cred.app_secret):
            raise IgnoreRequest("oauth2/token request for an unknown credential")
        request.headers["Authorization"] = basic_header(cred)

    async def bearer_token(self, cred: Credential) -> str:
        if cred.bearer_token:
            return cred.bearer_token
        lock = self._token_locks.setdefault(cred.alias, asyncio.Lock())
        async with lock:
            if not cred.bearer_token:
                cred.bearer_token = await self._fetch_token(cred)
                logger.info("fetched an app-only bearer token for credential %r", cred.alias)
        return cred.bearer_token

    async def _fetch_token(self, cred: Credential) -> str:
        request = Request(
            f"{self.api_base}/oauth2/token",
            method="POST",
            body=b"grant_type=client_credentials",
            headers={"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"},  # Basic auth: process_request
            meta={META_TOKEN_REQUEST: True, META_CREDENTIAL: cred.alias, "handle_httpstatus_all": True, "dont_retry": False},
            dont_filter=True,
        )
        assert self.crawler.engine is not None
        response = await self.crawler.engine.download_async(request)
        try:
            token = json.loads(response.body)["access_token"]
        except (ValueError, KeyError, TypeError):
            token = None
        if response.status != 200 or not token:
            self.pool.retire(cred.alias, f"oauth2/token refused its app key (HTTP {response.status})")
            raise IgnoreRequest(f"no bearer token for credential {cred.alias!r}")
        return str(token)

    def stop(self, reason: str) -> None:
        """Close the crawl with one clear line; the queue stays as it is."""
        if self.crawler.engine is not None and not getattr(self, "_stopping", False):
            self._stopping = True
            logger.error("stopping: %s (no usable credential; the remaining work is not lost: re-run the job after fixing credentials)", reason)
            deferred_from_coro(self.crawler.engine.close_spider_async(reason="no_usable_credentials"))
