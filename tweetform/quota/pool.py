"""The credentials a crawl may use, as lanes, and which of them the API rejected.

A *lane* is one rate-limit pool: a credential in user context, or an app in
app-only context (the API counts app-only quota per app, so credentials sharing
an app key share one app lane, named after the first of them). Full-archive
search is app-only; a user credential can still serve it through its app's
bearer token. Bluesky limits per client IP: its lanes are IPs (kind ``ip``), the
direct one or one per proxy (each pinned to its proxy), made by :func:`ip_lanes`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from tweetform.api.endpoints import XRPC_QUOTA, Endpoint
from tweetform.credentials import Credential

logger = logging.getLogger(__name__)


class NoCredentialError(RuntimeError):
    """No credential left that may call an endpoint."""


@dataclass(frozen=True)
class Lane:
    alias: str
    kind: str  # "user", "app", or "ip" (Bluesky)

    @property
    def name(self) -> str:
        return f"{self.alias}:{self.kind}"


class CredentialPool:
    def __init__(self, credentials: list[Credential], *, app_lanes_for_users: bool = False) -> None:
        self.credentials = list(credentials)
        self.by_alias = {c.alias: c for c in self.credentials}
        self.retired: dict[str, str] = {}  # alias -> reason
        self.held: dict[str, str] = {}  # alias -> why it sits out for now (its pinned proxies are all dead); it comes back
        self.user_lanes = [Lane(c.alias, "user") for c in self.credentials if c.kind == "user"]
        seen_apps: set[str] = set()
        self.app_lanes: list[Lane] = []  # app-kind credentials first: they exist for app-only use
        self.user_app_lanes: list[Lane] = []
        for cred in sorted(self.credentials, key=lambda c: c.kind != "app"):
            app = cred.app_key or cred.alias
            if app in seen_apps or not (cred.kind == "app" or cred.app_key and cred.app_secret):
                continue
            seen_apps.add(app)
            (self.app_lanes if cred.kind == "app" else self.user_app_lanes).append(Lane(cred.alias, "app"))
        self.app_lanes_for_users = app_lanes_for_users
        self.ip_lanes = [Lane(c.alias, "ip") for c in self.credentials if c.kind == "ip"]

    def lanes(self, endpoint: Endpoint, *, include_held: bool = False) -> list[Lane]:
        """Lanes that may call an endpoint now (retired credentials left out, and held ones unless asked)."""
        if endpoint.quota == XRPC_QUOTA:
            lanes = self.ip_lanes
        elif endpoint.app_only:
            lanes = self.app_lanes + self.user_app_lanes
        elif endpoint.user_only:  # a bearer token gets 403 there: never choose an app lane for it
            lanes = list(self.user_lanes)
        else:
            lanes = self.user_lanes + self.app_lanes + (self.user_app_lanes if self.app_lanes_for_users else [])
        return [lane for lane in lanes if lane.alias not in self.retired and (include_held or lane.alias not in self.held)]

    def retire(self, alias: str, reason: str) -> bool:
        """Take a credential out of rotation; True the first time."""
        if alias in self.retired or alias not in self.by_alias:
            return False
        self.retired[alias] = reason
        logger.error("credential %r taken out of rotation: %s", alias, reason)
        return True

    def hold(self, alias: str, reason: str) -> bool:
        """Take a credential out of rotation until :meth:`release`; True if it was in rotation."""
        if alias in self.held or alias not in self.by_alias:
            return False
        self.held[alias] = reason
        return True

    def release(self, alias: str) -> bool:
        """Put a held credential back; True if it was held."""
        return self.held.pop(alias, None) is not None

    def get(self, alias: str) -> Credential | None:
        return self.by_alias.get(alias)


def missing_auth(endpoint: Endpoint, credentials: list[Credential]) -> str | None:
    """One line naming what is missing when no configured credential may call an endpoint, else None."""
    if CredentialPool(credentials).lanes(endpoint, include_held=True):
        return None
    aliases = ", ".join(c.alias for c in credentials) or "none"
    if endpoint.user_only:
        return (f"{endpoint.key} needs a user-context credential (app_key, app_secret, oauth_token, oauth_token_secret; "
                f"`scrapy authorize` makes one): the API refuses app-only bearer tokens there, and the credentials "
                f"configured ({aliases}) are app-only")
    if endpoint.app_only:
        return (f"{endpoint.key} needs an app-only credential (a bearer_token, or an app_key and app_secret): "
                f"none of the credentials configured ({aliases}) has one")
    return f"no credential configured may call {endpoint.key}"
