"""One place that knows what an API answer means: v1.1 codes and v2 problem types.

:func:`classify` turns a status and a parsed body into an :class:`Outcome` that
the middlewares and spiders act on. Account-level outcomes (protected,
suspended, not found, deleted) are final and recorded in the ``errors``
bucket; auth outcomes retire a credential; transient ones are retried.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# outcome kinds
OK = "ok"
PROTECTED = "protected"
SUSPENDED = "suspended"
NOT_FOUND = "not_found"
DELETED = "deleted"
RATE_LIMITED = "rate_limited"
USAGE_CAPPED = "usage_capped"  # out of pay-per-use credits or over the monthly cap: waiting does not help
AUTH = "auth"  # the credential is bad, revoked or lacks the needed context
FORBIDDEN = "forbidden"  # this credential may not call this endpoint (needs app-only / user context)
SERVER = "server"  # 5xx: retry later
BAD_REQUEST = "bad_request"  # our request is wrong: not retried, reported
INVALID_BODY = "invalid_body"  # truncated or not JSON: retry
DEACTIVATED = "deactivated"  # Bluesky: an account its owner deactivated
BLOCKED = "blocked"  # Bluesky: a block between the viewer and the actor
EXPIRED_TOKEN = "expired_token"  # Bluesky: the session's access token expired: log in again, send again

#: outcomes about the requested account or tweet, final, written to the errors bucket
RECORDED = frozenset({PROTECTED, SUSPENDED, NOT_FOUND, DELETED, DEACTIVATED, BLOCKED})

V1_CODES: dict[int, str] = {
    17: NOT_FOUND,  # no user matches (users/lookup)
    34: NOT_FOUND,  # page (user) does not exist
    50: NOT_FOUND,  # user not found
    63: SUSPENDED,
    144: DELETED,  # no status found with that id
    179: PROTECTED,  # not authorized to see this status
    88: RATE_LIMITED,
    32: AUTH,  # could not authenticate you
    89: AUTH,  # invalid or expired token
    99: AUTH,  # unable to verify credentials (oauth2/token)
    135: AUTH,  # timestamp out of bounds (clock skew)
    215: AUTH,  # bad authentication data
    220: FORBIDDEN,  # credentials do not allow access to this resource
    130: SERVER,
    131: SERVER,
}

PROBLEM_PREFIX = "https://api.twitter.com/2/problems/"


@dataclass(frozen=True)
class Outcome:
    kind: str
    status: int
    code: int | None = None
    message: str = ""

    @property
    def final(self) -> bool:
        return self.kind in RECORDED


def problem_kind(problem: dict[str, Any]) -> str:
    """The outcome of one v2 error object (partial error or top-level problem)."""
    ptype = str(problem.get("type", ""))
    title = str(problem.get("title", ""))
    name = ptype[len(PROBLEM_PREFIX):] if ptype.startswith(PROBLEM_PREFIX) else ptype
    detail = str(problem.get("detail", ""))
    if name in ("unsupported-authentication", "client-forbidden"):
        return FORBIDDEN
    if "suspended" in detail.lower() or title == "Forbidden":
        return SUSPENDED
    if name == "not-authorized-for-resource":
        return PROTECTED
    if name == "resource-not-found":
        return DELETED if problem.get("resource_type") == "tweet" else NOT_FOUND
    if name in ("rate-limit-exceeded",) or problem.get("status") == 429:
        return RATE_LIMITED
    if name == "usage-capped":
        return USAGE_CAPPED
    if name == "invalid-request":
        return BAD_REQUEST
    return BAD_REQUEST


#: Bluesky's XRPC error names (``{"error", "message"}``) that say something about the actor or post
XRPC_ERRORS: dict[str, str] = {
    "AccountTakedown": SUSPENDED,
    "AccountDeactivated": DEACTIVATED,
    "BlockedActor": BLOCKED,
    "BlockedByActor": BLOCKED,
    "NotFound": NOT_FOUND,
    "ExpiredToken": EXPIRED_TOKEN,
    "InvalidToken": AUTH,
    "AuthMissing": AUTH,
    "AuthenticationRequired": AUTH,
    "RateLimitExceeded": RATE_LIMITED,
}


def classify_xrpc(status: int, body: Any) -> Outcome:
    """Bluesky's answers: 400 InvalidRequest "… not found" is an actor or post that is not there."""
    name = str(body.get("error", "")) if isinstance(body, dict) else ""
    message = str(body.get("message", "")) if isinstance(body, dict) else ""
    kind = XRPC_ERRORS.get(name)
    if kind is None:
        not_found = name == "InvalidRequest" and ("not found" in message.lower() or "unable to resolve" in message.lower())
        kind = NOT_FOUND if not_found else AUTH if status in (401, 403) else BAD_REQUEST
    return Outcome(kind, status, None, f"{name}: {message}" if name else f"HTTP {status}")


def classify(status: int, body: Any, version: str) -> Outcome:
    """What an answer means. ``body`` is the parsed JSON or None when it did not parse."""
    if status == 429 and version == "bluesky":
        return Outcome(RATE_LIMITED, status, None, "rate limit exceeded")
    if status == 429:
        if is_usage_capped(body):
            return Outcome(USAGE_CAPPED, status, _v1_code(body), _v1_message(body) or str(body.get("detail") or ""))
        return Outcome(RATE_LIMITED, status, 88 if version == "1.1" else None, "rate limit exceeded")
    if status >= 500:
        return Outcome(SERVER, status, _v1_code(body), "server error")
    if body is None:
        return Outcome(INVALID_BODY, status, None, "body is not complete JSON")
    if status == 200:
        return Outcome(OK, status)
    if version == "bluesky":
        return classify_xrpc(status, body)
    if isinstance(body, dict) and body.get("error") == "Not authorized.":
        return Outcome(PROTECTED, status, None, "Not authorized.")
    code = _v1_code(body)
    if code is not None:
        kind = V1_CODES.get(code)
        if kind is None:
            kind = AUTH if status == 401 else BAD_REQUEST
        return Outcome(kind, status, code, _v1_message(body))
    if isinstance(body, dict) and ("type" in body or "title" in body):
        if status == 401:
            return Outcome(AUTH, status, None, str(body.get("detail") or body.get("title")))
        return Outcome(problem_kind(body), status, None, str(body.get("detail") or body.get("title")))
    if status in (401, 400) and version == "2":
        return Outcome(AUTH, status, None, "unauthorized")
    if status == 404:
        return Outcome(NOT_FOUND, status, None, "not found")
    return Outcome(BAD_REQUEST, status, None, f"HTTP {status}")


def is_usage_capped(body: Any) -> bool:
    """A 429 that is about money, not quota: v2 problem type ``usage-capped``; in v1.1 (which
    documents none) code 429 or a "Usage cap exceeded" message, as the sandbox answers."""
    if not isinstance(body, dict):
        return False
    if str(body.get("type", "")).endswith("/usage-capped") or body.get("title") == "UsageCapExceeded":
        return True
    return _v1_code(body) == 429 or "usage cap" in _v1_message(body).lower()


def _v1_code(body: Any) -> int | None:
    if isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]:
        first = body["errors"][0]
        if isinstance(first, dict) and isinstance(first.get("code"), int):
            return first["code"]
    return None


def _v1_message(body: Any) -> str:
    try:
        return str(body["errors"][0].get("message", ""))
    except (KeyError, IndexError, TypeError, AttributeError):
        return ""


def partial_errors(body: Any) -> list[tuple[str, dict[str, Any]]]:
    """v2 200 answers may carry ``errors`` beside ``data``: (outcome kind, error) each."""
    if not isinstance(body, dict) or not isinstance(body.get("errors"), list):
        return []
    return [(problem_kind(e), e) for e in body["errors"] if isinstance(e, dict)]
