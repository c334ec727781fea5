"""The sandbox's OAuth 1.0a PIN flow: request token → authorize (PIN) → access token.

The three endpoints of the API's "3-legged" flow for out-of-band clients, so
``scrapy authorize`` (and any requests-oauthlib client) can be tested end to end:

* ``POST /oauth/request_token`` — signed with the app's key and secret only,
  ``oauth_callback=oob``; answers ``oauth_token=…&oauth_token_secret=…&oauth_callback_confirmed=true``.
* ``GET /oauth/authorize?oauth_token=…`` — where the user would log in and
  approve the app. The sandbox approves at once, as the account given by
  ``user_id=`` (a sandbox extension) or else the first "ordinary" example
  account, and shows the fixed test PIN :data:`TEST_PIN` in a small HTML page
  (``<code id="oauth_pin">…</code>``, as the API's page does).
* ``POST /oauth/access_token`` — signed with the app and the request token,
  ``oauth_verifier=<PIN>``; answers ``oauth_token=…&oauth_token_secret=…&user_id=…&screen_name=…``.
  The new token works at once on every API endpoint as a user-context
  credential named ``authorized-<screen name>-<n>``.

Signatures, timestamps and nonces are verified by oauthlib's own
``RequestTokenEndpoint`` and ``AccessTokenEndpoint``. No secret is logged.
"""

from __future__ import annotations

import html
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web
from oauthlib.oauth1 import AccessTokenEndpoint, RequestTokenEndpoint, RequestValidator
from oauthlib.oauth1.rfc5849 import SIGNATURE_HMAC_SHA1

from .credentials import SandboxCredential

if TYPE_CHECKING:
    from .server import Sandbox

TEST_PIN = "4242424"
FORM = "application/x-www-form-urlencoded"
_REQUEST_TOKEN_TTL = 900.0


@dataclass
class _Pending:
    client_key: str
    secret: str
    created: float = field(default_factory=time.time)
    user_id: int | None = None  # set once authorized
    verifier: str | None = None


class _FlowValidator(RequestValidator):
    """oauthlib validator for the token endpoints: Twitter-shaped keys, plain http, 7-digit PINs."""

    allowed_signature_methods = (SIGNATURE_HMAC_SHA1,)
    enforce_ssl = False
    safe_characters = frozenset(chr(c) for c in range(0x21, 0x7F))
    client_key_length = (1, 255)
    request_token_length = (1, 255)
    access_token_length = (1, 255)
    nonce_length = (1, 255)
    verifier_length = (1, 64)
    dummy_client = "sandbox-dummy-client"
    dummy_request_token = "sandbox-dummy-request-token"

    def __init__(self, flow: "OAuthFlow") -> None:
        super().__init__()
        self.flow = flow

    # apps
    def validate_client_key(self, client_key: str, request: Any) -> bool:
        return client_key in self.flow.app_secrets()

    def get_client_secret(self, client_key: str, request: Any) -> str:
        return self.flow.app_secrets().get(client_key, "dummy")

    def validate_timestamp_and_nonce(self, client_key, timestamp, nonce, request, request_token=None, access_token=None):
        key = (client_key, timestamp, nonce, request_token or access_token or "")
        with self.flow.lock:
            if key in self.flow.nonces:
                return False
            self.flow.nonces.add(key)
            if len(self.flow.nonces) > 100_000:
                self.flow.nonces.clear()
        return True

    # request tokens
    def get_default_realms(self, client_key: str, request: Any) -> list[str]:
        return []

    def validate_requested_realms(self, client_key, realms, request) -> bool:
        return True

    def validate_redirect_uri(self, client_key: str, redirect_uri: str, request: Any) -> bool:
        return bool(redirect_uri)

    def save_request_token(self, token: dict, request: Any) -> None:
        with self.flow.lock:
            stale = time.time() - _REQUEST_TOKEN_TTL
            for key in [k for k, p in self.flow.pending.items() if p.created < stale]:
                del self.flow.pending[key]  # request tokens expire, as the API's do
            self.flow.pending[token["oauth_token"]] = _Pending(request.client_key, token["oauth_token_secret"])

    # access tokens
    def validate_request_token(self, client_key: str, token: str, request: Any) -> bool:
        pending = self.flow.pending.get(token)
        return pending is not None and pending.client_key == client_key

    def get_request_token_secret(self, client_key: str, token: str, request: Any) -> str:
        pending = self.flow.pending.get(token)
        return pending.secret if pending is not None else "dummy"

    def validate_verifier(self, client_key: str, token: str, verifier: str, request: Any) -> bool:
        pending = self.flow.pending.get(token)
        ok = pending is not None and pending.verifier is not None and secrets.compare_digest(pending.verifier, verifier)
        if ok:
            request.user = pending.user_id  # type: ignore[union-attr]
        return ok

    def get_realms(self, token: str, request: Any) -> list[str]:
        return []

    def save_access_token(self, token: dict, request: Any) -> None:
        self.flow.issue(request.client_key, token["oauth_token"], token["oauth_token_secret"], request.user)

    def invalidate_request_token(self, client_key: str, request_token: str, request: Any) -> None:
        with self.flow.lock:
            self.flow.pending.pop(request_token, None)


class OAuthFlow:
    """The flow's state in one sandbox: request tokens waiting, PINs given, tokens issued."""

    def __init__(self, sandbox: "Sandbox") -> None:
        self.sandbox = sandbox
        self.lock = threading.Lock()
        self.pending: dict[str, _Pending] = {}
        self.nonces: set[tuple[str, str, str, str]] = set()
        self.issued = 0
        validator = _FlowValidator(self)
        self.request_endpoint = RequestTokenEndpoint(validator)
        self.access_endpoint = AccessTokenEndpoint(validator)

    def app_secrets(self) -> dict[str, str]:
        return {c.app_key: c.app_secret for c in self.sandbox.credentials if c.app_key and c.app_secret}

    def issue(self, client_key: str, token: str, token_secret: str, user_id: int | None) -> None:
        """Make an issued access token a credential the API accepts."""
        user = self.sandbox.world.user(user_id) if user_id is not None else None
        name = user.screen_name if user is not None else "user"
        with self.lock:
            self.issued += 1
            alias = f"authorized-{name}-{self.issued}"
        cred = SandboxCredential(alias=alias, app_key=client_key, app_secret=self.app_secrets()[client_key],
                                 oauth_token=token, oauth_token_secret=token_secret)
        self.sandbox.auth._add(cred)  # the Authenticator's registry (its validator shares the dicts)
        self.sandbox.credentials.append(cred)

    def default_user(self) -> int:
        return self.sandbox.world.examples()["ordinary"][0]

    # --- handlers ----------------------------------------------------------------------

    @staticmethod
    def _url(request: web.Request) -> str:
        return f"{request.scheme}://{request.host}{request.raw_path}"

    @staticmethod
    async def _body(request: web.Request) -> str:
        if FORM not in (request.headers.get("Content-Type") or ""):
            return ""
        return (await request.read()).decode("utf-8", "replace")

    async def request_token(self, request: web.Request) -> web.Response:
        headers = {"Authorization": request.headers.get("Authorization", ""), "Content-Type": request.headers.get("Content-Type", "")}
        _, body, status = self.request_endpoint.create_request_token_response(
            self._url(request), http_method=request.method, body=await self._body(request), headers=headers)
        if status != 200:
            return _refused(status, body)
        return web.Response(status=200, text=body, content_type="text/html")  # the API says text/html too

    async def authorize(self, request: web.Request) -> web.Response:
        token = request.query.get("oauth_token", "")
        pending = self.pending.get(token)
        if pending is None:
            return web.Response(status=401, text="This page is no longer valid: the request token is unknown or used.",
                                content_type="text/html")
        try:
            user_id = int(request.query.get("user_id") or self.default_user())
        except ValueError:
            return web.Response(status=400, text="user_id must be numeric", content_type="text/html")
        user = self.sandbox.world.user(user_id)
        if user is None or user.suspended or user.deleted:
            return web.Response(status=403, text="That account cannot log in.", content_type="text/html")
        with self.lock:
            pending.user_id, pending.verifier = user_id, TEST_PIN
        page = (f"<!DOCTYPE html><html><head><title>Authorize application</title></head><body>"
                f"<p>You have authorized the application as @{html.escape(user.screen_name)}.</p>"
                f"<p>Enter this PIN to complete the authorization process:</p>"
                f"<kbd aria-labelledby=\"code-desc\"><code id=\"oauth_pin\">{TEST_PIN}</code></kbd></body></html>")
        return web.Response(status=200, text=page, content_type="text/html")

    async def access_token(self, request: web.Request) -> web.Response:
        headers = {"Authorization": request.headers.get("Authorization", ""), "Content-Type": request.headers.get("Content-Type", "")}
        token = _oauth_param(headers["Authorization"], "oauth_token")
        pending = self.pending.get(token or "")
        user = self.sandbox.world.user(pending.user_id) if pending and pending.user_id is not None else None
        extra = {"user_id": str(user.id), "screen_name": user.screen_name} if user is not None else {}
        _, body, status = self.access_endpoint.create_access_token_response(
            self._url(request), http_method=request.method, body=await self._body(request), headers=headers, credentials=extra)
        if status != 200:
            return _refused(status, body, "Error processing your OAuth request: Invalid oauth_verifier parameter")
        return web.Response(status=200, text=body, content_type="text/html")


def _oauth_param(header: str, name: str) -> str | None:
    from oauthlib.oauth1.rfc5849.utils import parse_authorization_header

    try:
        return dict(parse_authorization_header(header)).get(name) if header.lower().startswith("oauth ") else None
    except (ValueError, TypeError):
        return None


def _refused(status: int, body: Any, message: str = "Could not authenticate you.") -> web.Response:
    if status == 401:
        return web.json_response({"errors": [{"code": 32, "message": message}]}, status=401)
    return web.Response(status=status, text=str(body or ""), content_type="text/plain")


def add_routes(app: web.Application, sandbox: "Sandbox") -> OAuthFlow:
    flow = OAuthFlow(sandbox)
    app.router.add_post("/oauth/request_token", flow.request_token)
    app.router.add_get("/oauth/authorize", flow.authorize)
    app.router.add_post("/oauth/access_token", flow.access_token)
    return flow
