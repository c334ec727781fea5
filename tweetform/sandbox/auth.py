"""Request authentication for the sandbox, independent of any HTTP framework.

The HTTP layer calls :meth:`Authenticator.authenticate` on every API request
with plain values (method, full URL as the client addressed it, headers, raw
body) and gets a :class:`Principal` back, or an :class:`AuthError` carrying the
status, the v1.1 error code and message Twitter would answer with.

* ``Authorization: OAuth ...``: OAuth 1.0a, HMAC-SHA1 only. Cheap pre-checks
  (parsing, timestamp window, key/token lookup, revocation, nonce replay) are
  done here with dict lookups; the signature itself is verified by oauthlib's
  server side (``SignatureOnlyEndpoint``) with a validator whose key-format
  checks accept Twitter-shaped keys and plain ``http://`` URLs.
* ``Authorization: Bearer ...``: app-only tokens, either fixed in the
  credentials file or issued by ``POST /oauth2/token`` (:meth:`issue_bearer`).

No error message or log line produced here contains a secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import hmac
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

from oauthlib.common import urldecode
from oauthlib.oauth1 import RequestValidator, SignatureOnlyEndpoint
from oauthlib.oauth1.rfc5849 import SIGNATURE_HMAC_SHA1
from oauthlib.oauth1.rfc5849 import errors as oauth1_errors
from oauthlib.oauth1.rfc5849 import utils as oauth1_utils

from .credentials import SandboxCredential

__all__ = ["AuthError", "Authenticator", "Principal"]

# oauthlib's server side logs every failed verification at INFO/DEBUG (with
# the signature base string): one line per rejected request. These two
# loggers are used only by server-side verification, never by clients
# signing requests; the sandbox reports failures through AuthError instead.
for _name in ("oauthlib.oauth1.rfc5849.endpoints.signature_only", "oauthlib.oauth1.rfc5849.signature"):
    logging.getLogger(_name).setLevel(logging.WARNING)

FORM_URLENCODED = "application/x-www-form-urlencoded"

# Characters oauthlib's urldecode accepts in a query string; anything else
# (raw spaces, raw non-ASCII) is percent-encoded first, which preserves the
# decoded parameter values and therefore the signature.
_QUERY_SAFE = "=&;:%+~,*@!()/?'$-._"
_QUERY_OK = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" + _QUERY_SAFE
)

_MSG_32 = "Could not authenticate you."
_MSG_89 = "Invalid or expired token."
_MSG_99 = "Unable to verify your credentials"
_MSG_135 = "Timestamp out of bounds."
_MSG_170 = "Missing required parameter: grant_type"
_MSG_215 = "Bad Authentication data."

_MANDATORY = (
    "oauth_consumer_key",
    "oauth_nonce",
    "oauth_signature",
    "oauth_signature_method",
    "oauth_timestamp",
)


@dataclass(frozen=True)
class Principal:
    """Who made an authenticated request.

    ``kind`` is ``"user"`` (OAuth 1.0a user context) or ``"app"`` (bearer
    token); rate limits pool by ``(alias, kind)``. ``app_key`` is None for a
    credential that only has a fixed bearer token.
    """

    alias: str
    kind: str
    app_key: str | None


class AuthError(Exception):
    """An authentication failure and the answer the API gives to it.

    ``status``: HTTP status; ``v11_code``/``message``: the v1.1 error body
    (``{"errors": [{"code": v11_code, "message": message}]}``); ``reason``: a
    short machine string for counters and logs (``missing``, ``malformed``,
    ``timestamp``, ``replayed_nonce``, ``bad_signature``, ``unknown_key``,
    ``signature_method``, ``invalid_token``, ``revoked``, ``bad_credentials``,
    ``grant_type``). Never contains a secret.
    """

    def __init__(self, status: int, v11_code: int, message: str, reason: str) -> None:
        super().__init__(f"{status} code {v11_code} {message} ({reason})")
        self.status = status
        self.v11_code = v11_code
        self.message = message
        self.reason = reason


def _missing(reason: str = "missing") -> AuthError:
    return AuthError(400, 215, _MSG_215, reason)


def _unauthenticated(reason: str) -> AuthError:
    return AuthError(401, 32, _MSG_32, reason)


def _invalid_token(reason: str) -> AuthError:
    return AuthError(401, 89, _MSG_89, reason)


# One `name="value"` (or bare `name=value`) item of an OAuth header, with its
# separator; the whole parameter list must consist of such items.
_OAUTH_ITEM = re.compile(r'\s*([A-Za-z0-9_.~-]+)\s*=\s*(?:"([^"]*)"|([^\s,"]*))\s*(?:,|$)')


def _parse_oauth_header(auth: str) -> dict[str, str] | None:
    """``{name: raw value}`` of an ``OAuth ...`` header, None if malformed.

    A regex instead of oauthlib's parse_authorization_header (urllib's
    character loop, ~25 us); oauthlib still parses the header again when it
    verifies the signature, and rejects what it cannot parse.
    """
    rest = auth[6:]  # after "OAuth "
    params: dict[str, str] = {}
    pos, end = 0, len(rest)
    while pos < end:
        m = _OAUTH_ITEM.match(rest, pos)
        if m is None or m.end() == pos:
            return None
        name, quoted, bare = m.groups()
        params[name] = quoted if quoted is not None else bare
        pos = m.end()
    return params or None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup on any mapping (dict, multidict, ...)."""
    value = headers.get(name)
    if value is None:
        lname = name.lower()
        value = headers.get(lname)
        if value is None:
            for key, val in headers.items():
                if key.lower() == lname:
                    value = val
                    break
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return value


class _Validator(RequestValidator):
    """oauthlib validator for the sandbox.

    The default key-format checks (20-30 alphanumerics, https only) reject
    Twitter-shaped values such as ``370773112-GmHx...`` tokens and the guide's
    42-character nonce, and a sandbox on ``http://127.0.0.1``; they are
    replaced by loose printable-ASCII checks. Existence, timestamp and nonce
    are checked by :class:`Authenticator` before oauthlib runs (with its
    injectable clock), so the corresponding hooks here simply agree.
    """

    def __init__(self, app_secrets: Mapping[str, str], token_secrets: Mapping[str, str]) -> None:
        super().__init__()
        self._app_secrets = app_secrets
        self._token_secrets = token_secrets

    # -- format checks -----------------------------------------------------
    allowed_signature_methods = (SIGNATURE_HMAC_SHA1,)
    enforce_ssl = False
    # Timestamps are checked against the Authenticator's clock beforehand;
    # oauthlib's own check uses time.time() and must never fire.
    timestamp_lifetime = 10**12
    safe_characters = frozenset(chr(c) for c in range(0x21, 0x7F))
    client_key_length = (1, 255)
    access_token_length = (1, 255)
    request_token_length = (1, 255)
    nonce_length = (1, 255)

    # -- lookups ------------------------------------------------------------
    dummy_client = "sandbox-dummy-client"
    dummy_access_token = "sandbox-dummy-token"

    def validate_client_key(self, client_key, request):
        return client_key in self._app_secrets

    def validate_access_token(self, client_key, token, request):
        return token in self._token_secrets

    def validate_timestamp_and_nonce(self, client_key, timestamp, nonce, request, **kwargs):
        return True

    def validate_realms(self, client_key, token, request, uri=None, realms=None):
        return True

    def get_client_secret(self, client_key, request):
        return self._app_secrets.get(client_key, "dummy")

    def get_access_token_secret(self, client_key, token, request):
        return self._token_secrets.get(token, "dummy")


class Authenticator:
    """Verifies OAuth 1.0a and bearer requests against a set of credentials.

    ``timestamp_window``: accepted clock skew in seconds (either direction);
    also how long a nonce is remembered. ``clock``: seconds since the epoch
    (injectable for tests).
    """

    def __init__(
        self,
        credentials: Iterable[SandboxCredential],
        *,
        timestamp_window: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._window = int(timestamp_window)
        self._clock = clock
        self._by_alias: dict[str, SandboxCredential] = {}
        self._app_secrets: dict[str, str] = {}  # consumer key -> secret
        self._app_alias: dict[str, str] = {}  # consumer key -> alias of app-only principal
        self._tokens: dict[str, SandboxCredential] = {}  # access token -> credential
        self._token_secrets: dict[str, str] = {}
        self._bearers: dict[str, Principal] = {}  # bearer token -> principal
        self._bearer_by_key: dict[str, str] = {}  # consumer key -> its bearer token
        for cred in credentials:
            self._add(cred)
        if not self._by_alias:
            raise ValueError("Authenticator needs at least one credential")
        self._revoked: set[str] = set()
        self._endpoint = SignatureOnlyEndpoint(_Validator(self._app_secrets, self._token_secrets))
        self._lock = threading.Lock()
        self._nonces: set[tuple[str, str, str, str]] = set()
        self._nonce_expiry: list[tuple[int, tuple[str, str, str, str]]] = []

    # -- setup ----------------------------------------------------------------
    def _add(self, cred: SandboxCredential) -> None:
        if cred.alias in self._by_alias:
            raise ValueError(f"credential alias {cred.alias!r} appears more than once")
        self._by_alias[cred.alias] = cred
        key = cred.app_key
        if key is not None:
            known = self._app_secrets.setdefault(key, cred.app_secret)
            if known != cred.app_secret:
                raise ValueError(
                    f"credential {cred.alias!r}: its app_key is shared with another "
                    "credential but its app_secret differs"
                )
            # The app-only principal of a shared app key: the first app-kind
            # credential, else the first credential using that key.
            if key not in self._app_alias or (
                cred.kind == "app" and self._by_alias[self._app_alias[key]].kind != "app"
            ):
                self._app_alias[key] = cred.alias
        if cred.oauth_token is not None:
            if cred.oauth_token in self._tokens:
                raise ValueError(f"credential {cred.alias!r}: its oauth_token is used by another credential")
            self._tokens[cred.oauth_token] = cred
            self._token_secrets[cred.oauth_token] = cred.oauth_token_secret
        if cred.bearer_token is not None:
            if cred.bearer_token in self._bearers:
                raise ValueError(f"credential {cred.alias!r}: its bearer_token is used by another credential")
            self._bearers[cred.bearer_token] = Principal(cred.alias, "app", key)
            if key is not None:
                self._bearer_by_key.setdefault(key, cred.bearer_token)

    # -- revocation -------------------------------------------------------------
    def revoke(self, alias: str) -> None:
        """Make every request of credential ``alias`` fail with 401 code 89."""
        if alias not in self._by_alias:
            raise KeyError(alias)
        self._revoked.add(alias)

    def restore(self, alias: str) -> None:
        """Undo :meth:`revoke`."""
        if alias not in self._by_alias:
            raise KeyError(alias)
        self._revoked.discard(alias)

    def is_revoked(self, alias: str) -> bool:
        return alias in self._revoked

    @property
    def aliases(self) -> list[str]:
        return list(self._by_alias)

    def app_of(self, principal: Principal) -> tuple[str, str]:
        """``(app id, app alias)`` a request is billed to: its consumer key and the alias of
        that app's app-only credential (a bearer-only credential is an app of its own)."""
        key = principal.app_key
        if key is None:
            return "bearer:" + principal.alias, principal.alias
        return key, self._app_alias.get(key, principal.alias)

    # -- per request --------------------------------------------------------------
    def authenticate(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | str | None = None,
    ) -> Principal:
        """The principal of a request, or raise :class:`AuthError`.

        ``url`` is the full URL the client addressed (scheme, Host header's
        host and port, raw path, raw query); a URL starting with ``/`` is
        completed as ``http://<Host header><url>``. ``body`` only counts for
        OAuth 1.0a when Content-Type is form-urlencoded.
        """
        auth = _header(headers, "Authorization")
        if auth is None or not auth.strip():
            raise _missing("missing")
        scheme, _, rest = auth.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            return self._bearer(rest.strip())
        if scheme == "oauth":
            return self._oauth1(method, url, headers, auth.strip(), body)
        raise _missing("malformed")

    def _bearer(self, token: str) -> Principal:
        if not token or " " in token:
            raise _missing("malformed")
        principal = self._bearers.get(token)
        if principal is None:
            raise _invalid_token("invalid_token")
        if principal.alias in self._revoked:
            raise _invalid_token("revoked")
        return principal

    def _oauth1(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        auth: str,
        body: bytes | str | None,
    ) -> Principal:
        params = _parse_oauth_header(auth)
        if params is None:
            raise _missing("malformed")
        if not all(params.get(name) for name in _MANDATORY):
            raise _missing("malformed")
        unescape = oauth1_utils.unescape
        consumer_key = unescape(params["oauth_consumer_key"])
        token = unescape(params.get("oauth_token") or "")
        nonce = unescape(params["oauth_nonce"])
        timestamp = unescape(params["oauth_timestamp"])
        if not token:
            # Resource requests need user context; an app-signed request
            # without a token is not valid for the API endpoints.
            raise _missing("malformed")
        if not timestamp.isdigit() or len(timestamp) != 10:
            raise _missing("malformed")
        if params.get("oauth_version", "1.0") != "1.0":
            raise _missing("malformed")
        if unescape(params["oauth_signature_method"]) != SIGNATURE_HMAC_SHA1:
            raise _unauthenticated("signature_method")

        now = self._clock()
        ts = int(timestamp)
        if abs(now - ts) > self._window:
            raise AuthError(401, 135, _MSG_135, "timestamp")

        cred = self._tokens.get(token)
        if cred is None or cred.app_key != consumer_key:
            raise _unauthenticated("unknown_key")
        if cred.alias in self._revoked:
            raise _invalid_token("revoked")

        nonce_key = (consumer_key, token, nonce, timestamp)
        with self._lock:
            self._evict(now)
            if nonce_key in self._nonces:
                raise _unauthenticated("replayed_nonce")

        if not self._verify_signature(method, url, headers, auth, body):
            raise _unauthenticated("bad_signature")

        with self._lock:
            if nonce_key in self._nonces:  # a concurrent twin got there first
                raise _unauthenticated("replayed_nonce")
            self._nonces.add(nonce_key)
            heapq.heappush(self._nonce_expiry, (ts + self._window, nonce_key))
        return Principal(cred.alias, "user", consumer_key)

    def _verify_signature(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        auth: str,
        body: bytes | str | None,
    ) -> bool:
        content_type = _header(headers, "Content-Type") or ""
        form = FORM_URLENCODED in content_type.lower()
        if form and body:
            if isinstance(body, bytes):
                try:
                    body = body.decode("utf-8")
                except UnicodeDecodeError:
                    return False
        else:
            body = ""
        try:
            full_url = self._normalize_url(url, headers)
            valid, request = self._endpoint.validate_request(
                full_url,
                http_method=method.upper(),
                body=body,
                headers={"Authorization": auth, "Content-Type": FORM_URLENCODED if form else ""},
            )
        except (ValueError, oauth1_errors.OAuth1Error):
            return False
        if request is None:
            # oauthlib could not build the request: duplicate oauth_* params,
            # oauth_* params in both the header and the query/body, ...
            raise _missing("malformed")
        return bool(valid)

    @staticmethod
    def _normalize_url(url: str, headers: Mapping[str, str]) -> str:
        if url.startswith("/"):
            host = _header(headers, "Host")
            if not host:
                raise ValueError("relative URL without a Host header")
            url = f"http://{host}{url}"
        parts = urlsplit(url)
        query = parts.query
        if query and not _QUERY_OK.issuperset(query):
            query = quote(query, safe=_QUERY_SAFE)
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))

    def _evict(self, now: float) -> None:
        """Forget nonces whose timestamp left the window (caller holds the lock)."""
        heap = self._nonce_expiry
        while heap and heap[0][0] < now:
            _, key = heapq.heappop(heap)
            self._nonces.discard(key)

    @property
    def remembered_nonces(self) -> int:
        """How many nonces are currently remembered (for tests and stats)."""
        return len(self._nonces)

    # -- POST /oauth2/token -------------------------------------------------------
    def issue_bearer(self, headers: Mapping[str, str], body: bytes | str | None) -> str:
        """Answer ``POST /oauth2/token``: the app's bearer token.

        Expects ``Authorization: Basic base64(urlencode(key):urlencode(secret))``
        and ``grant_type=client_credentials`` in the form body. Returns the
        same token for the same app every time (as the API does until the
        token is invalidated): the credential's fixed ``bearer_token`` when it
        has one, else one derived from the app key and secret. Requests with
        it authenticate as ``Principal(alias, "app", app_key)``.
        """
        key = self._basic_app_key(_header(headers, "Authorization"))
        alias = self._app_alias[key]
        if alias in self._revoked:
            raise AuthError(403, 99, _MSG_99, "revoked")

        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        try:
            form = dict(urldecode(body or ""))
        except ValueError:
            form = {}
        if form.get("grant_type") != "client_credentials":
            raise AuthError(403, 170, _MSG_170, "grant_type")

        token = self._bearer_by_key.get(key)
        if token is None:
            digest = hashlib.sha256(
                f"tweetform-sandbox-bearer\0{key}\0{self._app_secrets[key]}".encode()
            ).digest()
            # Twitter-shaped: 21 "A"s then 91 more characters (112 in all).
            tail = base64.b64encode(digest * 3).decode("ascii")[:91]
            token = "A" * 21 + tail.replace("+", "A").replace("/", "B")
            self._bearer_by_key[key] = token
            self._bearers[token] = Principal(alias, "app", key)
        return token

    def _basic_app_key(self, auth: str | None) -> str:
        """The app key of valid HTTP Basic client credentials, else 403/99."""
        bad = AuthError(403, 99, _MSG_99, "bad_credentials")
        if not auth:
            raise bad
        scheme, _, encoded = auth.strip().partition(" ")
        if scheme.lower() != "basic":
            raise bad
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise bad from None
        key, sep, secret = decoded.partition(":")
        key, secret = unquote_plus(key), unquote_plus(secret)
        known = self._app_secrets.get(key)
        if not sep or known is None or not _equal(secret, known):
            raise bad
        return key


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
