"""Accounts and sessions: ``createSession``/``refreshSession`` and Bearer tokens, as the reference PDS.

Access tokens (``typ at+jwt``) and refresh tokens (``typ refresh+jwt``, rotated on use:
a used one is dead) are HS256 JWTs signed with a key made when the sandbox starts;
``iat``/``exp`` are integers on the sandbox's logical clock, so moving the clock
expires them (``ExpiredToken``). No ``didDoc`` is sent: the SDK would switch to its PDS.
``createSession`` has its own limits per account (30 per 5 minutes, 300 a day by default).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any, Callable

from ..credentials import BlueskyAccount
from ..limits import RateLimiter
from . import ids
from .xrpc import error, invalid

AUDIENCE = "did:web:sandbox.test"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    def __init__(self, accounts: list[BlueskyAccount], uid_of: Callable[[BlueskyAccount], int | None],
                 status_of: Callable[[int], str | None], now: Callable[[], float], options: dict[str, Any]) -> None:
        self.accounts = accounts
        self.uid_of = uid_of  # the world user an account is (None: not in this world)
        self.status_of = status_of  # 'active', 'deactivated', 'takendown' or None
        self.now = now
        self.access_ttl = int(options.get("access_ttl", 7200))
        self.refresh_ttl = int(options.get("refresh_ttl", 90 * 86400))
        per5, per_day = options.get("session_limits", (30, 300))
        self.limits = (RateLimiter(300, {"createSession": (int(per5), int(per5))}),
                       RateLimiter(86400, {"createSession": (int(per_day), int(per_day))}))
        self._key = secrets.token_bytes(32)
        self.live_refresh: dict[str, str] = {}  # jti -> did of refresh tokens not yet used
        self.created = 0
        self.refreshed = 0
        self.issued: list[str] = []  # the last tokens issued (test-only: leak checks look for them)

    def reset(self) -> None:
        for limiter in self.limits:
            limiter.reset_counters()
        self.created = self.refreshed = 0
        self.issued.clear()

    # --- tokens -------------------------------------------------------------------------

    def _jwt(self, typ: str, claims: dict[str, Any]) -> str:
        head = _b64(json.dumps({"typ": typ, "alg": "HS256"}, separators=(",", ":")).encode())
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        sig = hmac.new(self._key, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{_b64(sig)}"

    def _verify(self, token: str, typ: str) -> dict[str, Any]:
        """The claims of a token of this kind, or an XRPC error (ExpiredToken / InvalidToken)."""
        try:
            head, body, sig = token.split(".")
            expected = hmac.new(self._key, f"{head}.{body}".encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(_unb64(sig), expected):
                raise ValueError
            header, claims = json.loads(_unb64(head)), json.loads(_unb64(body))
        except (ValueError, TypeError):
            raise error(401, "Token could not be verified", "InvalidToken") from None
        if header.get("typ") != typ:
            raise invalid("Invalid token type", "InvalidToken")
        if claims.get("exp", 0) <= self.now():
            raise invalid("Token has expired", "ExpiredToken")
        return claims

    def _issue(self, did: str) -> dict[str, str]:
        now = int(self.now())
        jti = _b64(secrets.token_bytes(24))
        self.live_refresh[jti] = did
        access = self._jwt("at+jwt", {"scope": "com.atproto.appPass", "sub": did, "iat": now,
                                      "exp": now + self.access_ttl, "aud": AUDIENCE})
        refresh = self._jwt("refresh+jwt", {"scope": "com.atproto.refresh", "sub": did, "aud": AUDIENCE,
                                            "jti": jti, "iat": now, "exp": now + self.refresh_ttl})
        self.issued = [*self.issued[-98:], access, refresh]
        return {"accessJwt": access, "refreshJwt": refresh}

    def viewer(self, authorization: str | None, required: bool) -> str | None:
        """The DID of a request's access token; None without one (an error if ``required``)."""
        if not authorization:
            if required:
                raise error(401, "Authentication Required", "AuthMissing")
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise error(401, "Unexpected authorization type", "InvalidToken")
        return self._verify(token.strip(), "at+jwt")["sub"]

    # --- the two procedures --------------------------------------------------------------

    def limit_headers(self, key: str, spend: bool) -> tuple[bool, dict[str, str]]:
        """Spend one createSession of ``key``'s two windows; (allowed, headers of the tighter)."""
        decisions = [(lim.hit if spend else lim.peek)(key, "user", "createSession") for lim in self.limits]
        worst = min(zip(decisions, (300, 86400)), key=lambda d: (d[0].allowed, d[0].remaining))
        d, window = worst
        return all(x.allowed for x in decisions), {
            "ratelimit-limit": str(d.limit), "ratelimit-remaining": str(d.remaining),
            "ratelimit-reset": str(d.reset), "ratelimit-policy": f"{d.limit};w={window}"}

    def create(self, body: Any, handle_of: Callable[[int], str]) -> tuple[dict[str, Any], dict[str, str]]:
        if not isinstance(body, dict):
            raise invalid("Request body must be a JSON object")
        identifier, password = body.get("identifier"), body.get("password")
        if not isinstance(identifier, str) or not identifier:
            raise invalid('Input must have the property "identifier"')
        if not isinstance(password, str) or not password:
            raise invalid('Input must have the property "password"')
        account, uid = self._account(identifier.lower())
        allowed, headers = self.limit_headers(ids.did_of(uid) if uid is not None else identifier.lower(), True)
        if not allowed:
            raise error(429, "Rate Limit Exceeded", "RateLimitExceeded", headers)
        status = self.status_of(uid) if uid is not None else None
        if account is None or status is None or not hmac.compare_digest(account.app_password.encode(), password.encode()):
            raise error(401, "Invalid identifier or password", "AuthenticationRequired", headers)
        if status == "takendown":
            raise error(401, "Account has been taken down", "AccountTakedown", headers)
        did = ids.did_of(uid)
        self.created += 1
        return {**self._issue(did), "handle": handle_of(uid), "did": did, "active": True}, headers

    def refresh(self, authorization: str | None, handle_of: Callable[[int], str]) -> dict[str, Any]:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise error(401, "Authentication Required", "AuthMissing")
        claims = self._verify(token.strip(), "refresh+jwt")
        did = self.live_refresh.pop(claims.get("jti", ""), None)
        if did is None:  # rotated on use: a refresh token works once
            raise invalid("Token has been revoked", "ExpiredToken")
        uid = ids.uid_of_did(did)
        self.refreshed += 1
        return {**self._issue(did), "handle": handle_of(uid) if uid is not None else "handle.invalid",
                "did": did, "active": True}

    def _account(self, identifier: str) -> tuple[BlueskyAccount | None, int | None]:
        for account in self.accounts:
            uid = self.uid_of(account)
            if identifier == account.handle or (uid is not None and identifier == ids.did_of(uid)):
                return account, uid
        return None, None

