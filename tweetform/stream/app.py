"""The app the filtered stream belongs to: rules and the connection are one app's (its bearer token).

Both ``scrapy stream rules`` and ``scrapy crawl stream`` use the first app-only
credential (a ``bearer_token``, or ``app_key`` and ``app_secret`` from which the
token is fetched with ``POST oauth2/token``) unless ``credential=ALIAS`` names
another. The token is kept in memory only, never logged.
"""

from __future__ import annotations

from typing import Any

from tweetform.api.auth import basic_header
from tweetform.credentials import Credential


class StreamSetupError(ValueError):
    """No usable app credential, or the API refused the token; the message is the one line shown."""


class Unreachable(StreamSetupError):
    """Nothing answered at the API's address."""


class Rejected(StreamSetupError):
    """The API refused the app's credential (401/403), or its bearer token."""


def app_credential(credentials: list[Credential], alias: str | None = None) -> Credential:
    """The app-only credential of the stream: ``alias``'s, else the first one configured."""
    if alias:
        found = next((c for c in credentials if c.alias == alias), None)
        if found is None:
            known = ", ".join(c.alias for c in credentials) or "none"
            raise StreamSetupError(f"no credential {alias!r} is configured (configured: {known})")
        if found.kind != "app":
            raise StreamSetupError(f"credential {alias!r} is a user-context credential: the filtered stream needs an "
                                   "app-only one (bearer_token, or app_key and app_secret)")
        return found
    found = next((c for c in credentials if c.kind == "app"), None)
    if found is None:
        raise StreamSetupError("the filtered stream needs an app-only credential (bearer_token, or app_key and "
                               "app_secret) and none is configured")
    return found


def token_request(api_base: str, cred: Credential) -> tuple[str, dict[str, str], str]:
    """``(url, headers, body)`` of ``POST oauth2/token`` for a credential without a bearer token."""
    return (f"{api_base.rstrip('/')}/oauth2/token",
            {"Authorization": basic_header(cred), "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"},
            "grant_type=client_credentials")


def token_from(status: int, body: Any, cred: Credential) -> str:
    """The bearer token of an ``oauth2/token`` answer, or StreamSetupError naming the alias only."""
    if status == 200 and isinstance(body, dict) and isinstance(body.get("access_token"), str):
        return body["access_token"]
    raise Rejected(f"credential {cred.alias!r}: the API refused its bearer token (HTTP {status})")
