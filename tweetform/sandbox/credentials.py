"""Credentials known to the sandbox (the local Twitter API emulator).

A credential is either *user context* (OAuth 1.0a: app key and secret plus an
access token and token secret) or *app-only* (a bearer token fixed in the
file, and/or an app key and secret from which ``POST /oauth2/token`` issues
one).

``load_credentials`` reads tweetform's settings shape and tweetf0rm's
``config.json`` shape; ``DEMO_CREDENTIALS`` is the built-in public demo set
used when no file is given.

Bluesky accounts (``{"alias", "handle", "app_password"}``, for the sandbox's
Bluesky face) sit in the same lists: ``load_bluesky_accounts`` reads them,
``load_credentials`` passes over them; ``DEMO_BLUESKY_ACCOUNTS`` are the demo set's.

Error messages name the entry (index and alias) and the offending field, never
a value: every field but the alias may be secret.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tweetform.credentials import Credential, CredentialError, keys_problem, parse_credentials, read_credentials_file

__all__ = [
    "DEMO_BLUESKY_ACCOUNTS",
    "DEMO_CREDENTIALS",
    "BlueskyAccount",
    "SandboxCredential",
    "demo_credentials_as_settings",
    "load_bluesky_accounts",
    "load_credentials",
]

_FIELDS = (
    "app_key",
    "app_secret",
    "oauth_token",
    "oauth_token_secret",
    "bearer_token",
)


@dataclass(frozen=True)
class SandboxCredential:
    """One API credential the sandbox accepts.

    Secrets are excluded from ``repr`` so a credential can be logged safely.
    """

    alias: str
    app_key: str | None = None
    app_secret: str | None = field(default=None, repr=False)
    oauth_token: str | None = None
    oauth_token_secret: str | None = field(default=None, repr=False)
    bearer_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        problem = _problem(self.alias, {name: getattr(self, name) for name in _FIELDS})
        if problem:
            raise ValueError(f"credential {self.alias!r}: {problem}")

    @property
    def kind(self) -> str:
        """``"user"`` with an OAuth token and secret, ``"app"`` otherwise."""
        return "user" if self.oauth_token else "app"

    def as_settings(self) -> dict[str, str]:
        """The credential in tweetform's settings shape (only fields set)."""
        out = {"alias": self.alias}
        for name in _FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


def _problem(alias: Any, values: Mapping[str, Any]) -> str | None:
    """What is wrong with a credential (never quoting a value), or None: tweetform's own rules."""
    if not isinstance(alias, str) or not alias.strip():
        return "alias must be a non-empty string"
    for name in _FIELDS:
        if values.get(name) is not None and not isinstance(values[name], str):
            return f"{name} must be a string"
    return keys_problem(values)


@dataclass(frozen=True)
class BlueskyAccount:
    """A Bluesky account of the sandbox's world: a handle and its app password (never in repr)."""

    alias: str
    handle: str
    app_password: str = field(repr=False)

    def as_settings(self) -> dict[str, str]:
        return {"alias": self.alias, "handle": self.handle, "app_password": self.app_password}


def _sandbox_credential(cred: Credential) -> SandboxCredential:
    return SandboxCredential(alias=cred.alias, **{name: getattr(cred, name) or None for name in _FIELDS})


def load_credentials(source: str | os.PathLike | Mapping | Iterable) -> list[SandboxCredential]:
    """Credentials from a JSON file path or an already parsed object, read by tweetform's own parser
    (:mod:`tweetform.credentials`: the same shapes and rules as the crawler's settings and files).

    Accepted shapes: tweetform's list of entries or ``{"credentials": [...]}``, and tweetf0rm's
    ``config.json`` (``{"apikeys": {"<alias>": {...}}, ...}``; its other top-level keys such as
    ``redis_config`` are ignored). Raises ``ValueError`` (a ``CredentialError``) naming the entry
    and the field, never a value; aliases must be unique and at least one must be given.
    """
    creds = _read(source)
    if not creds:
        origin = f"credentials file {str(source)!r}" if isinstance(source, (str, os.PathLike)) else "credentials"
        raise CredentialError(f"{origin}: no credentials found")
    return [_sandbox_credential(cred) for cred in creds if cred.kind != "bluesky"]


def load_bluesky_accounts(source: str | os.PathLike | Mapping | Iterable) -> list[BlueskyAccount]:
    """The Bluesky accounts (``{"alias", "handle", "app_password"}``) of a credentials list or file."""
    return [BlueskyAccount(c.alias, c.handle, c.app_password) for c in _read(source) if c.kind == "bluesky"]


def _read(source: str | os.PathLike | Mapping | Iterable) -> list[Credential]:
    if isinstance(source, (str, os.PathLike)):
        return read_credentials_file(source, setting="credentials file")
    return parse_credentials(source, source="credentials")


# --- built-in demo set -------------------------------------------------------
# Public, deterministic demo values (documented in settings_local.py.example).
# Twitter-shaped: consumer key 25 chars, consumer secret 50, access token
# "<user id>-<40 chars>", token secret 45, bearer token 112.


def _user(n: int, key: str, secret: str, token: str, token_secret: str) -> SandboxCredential:
    return SandboxCredential(
        alias=f"demo-user-{n}",
        app_key=key,
        app_secret=secret,
        oauth_token=token,
        oauth_token_secret=token_secret,
    )


def _app(n: int, key: str, secret: str, bearer: str) -> SandboxCredential:
    return SandboxCredential(alias=f"demo-app-{n}", app_key=key, app_secret=secret, bearer_token=bearer)


# Two apps, four users each (a lab's usual shape: one developer app, several
# researchers' access tokens): demo-user-1..4 and demo-app-1 share the first app's
# consumer key, demo-user-5..8 and demo-app-2 the second's. Quotas pool per
# credential; billing (the sandbox's ledger) per app.
_APP_KEYS = (
    ("WB9ZMBWbReNkooi40KvZMDE4b", "saT3iPRo2cf5b98IxJC0n7yIumWm4MMWpzR2f6Jz8YGrFaZEAj"),
    ("oSdccHm4IGKFNfMgo90fXxYMi", "oZa9zfS49yRbgJ9tvP2z22V7jcEmJWuELwCkSTscbsqORp5ylP"),
)
DEMO_CREDENTIALS: tuple[SandboxCredential, ...] = (
    _user(1, *_APP_KEYS[0],
          "1480000000000007919-CbltOBokDRD7pC8WqCh0rtA84owRFumvtRDS8On7",
          "Df9VhPwjoAknSVpUirsqxR8okrKAVbqfod7urdbQJAR0o"),
    _user(2, *_APP_KEYS[0],
          "1480000000000015838-6z35TtM3DurI4IW1uOdqDtq9RJh1PVTFhYUn1vxE",
          "N5ur6yO6H0z3B6f3KEfHuMQG3jDri9OULdDdmMYeHHQND"),
    _user(3, *_APP_KEYS[0],
          "1480000000000023757-pnhIhHwpHs0jAKsexb7d11GFNh2KFSPgiCX5BpmH",
          "GkmhYNMW9KKdDOAWkZ44yg53vqfk0fY8iYPSYkU5By2jw"),
    _user(4, *_APP_KEYS[0],
          "1480000000000031676-yiphrs5bQGWq3HybtCsP828YucDYlUuXRMtJN2yI",
          "zSYUb4vaOEdo6c8OUmqTKEXjWDvMGhBCPqv0R64PNO8kT"),
    _user(5, *_APP_KEYS[1],
          "1480000000000039595-m8i0d5FOopP1uKmA4QlN958kOBX88YQ0xfQRCd8d",
          "6XZzNJ0vTsjMwWJa6rwpNsRoQc7UvX5sgs6QpdtL7mGyq"),
    _user(6, *_APP_KEYS[1],
          "1480000000000047514-efLFvnQWndRjTkfXdkh6igwV0YSGP00GbrkTqIkC",
          "R9YXtqlcVpDvr88MoMBB4plRpOLk44AWuXZI5nIX0Qn6h"),
    _user(7, *_APP_KEYS[1],
          "1480000000000055433-B1kMwWgbqYrSRSaSGhNKYHN9Bl10h1jc9SQpgr8Q",
          "pDyPBi1LTlNG3Y4QaISHsWxoGZfEQwKtzJYyb2pyIvYCm"),
    _user(8, *_APP_KEYS[1],
          "1480000000000063352-nnMrDBthxlqzQReCZMkofR9TV0BnJjNeLEiLPnQD",
          "ynzPizQvRsYRF8aUzEu6qLQVT06qyABTFtfQ6zY2bEAtI"),
    _app(1, *_APP_KEYS[0],
         "AAAAAAAAAAAAAAAAAAAAAPzQt6fV9hI2uTpOKBsIpXSS8dkF39l8GrFqLAvCJVQM8vjObEEeH7FDidbsMDXK"
         "CrWLA3rF3Wif61OZrn3vyWFy4Noa"),
    _app(2, *_APP_KEYS[1],
         "AAAAAAAAAAAAAAAAAAAAAEYMkAd7QWdyUIaP9e7BVDGB0ubsE7XaocBCF0V1y9RLtC6HxhQ6hkxSzACwkKDo"
         "TVCzdeUroJzcTtesqwQNmbkkvt7P"),
)


# Three demo Bluesky accounts: the sandbox's Bluesky face gives their handles to three
# ordinary users of whatever world it serves (with follows and posts).
DEMO_BLUESKY_ACCOUNTS: tuple[BlueskyAccount, ...] = (
    BlueskyAccount("demo-bsky-1", "demo-1.sandbox.test", "lxe6-rfsa-io4j-sklv"),
    BlueskyAccount("demo-bsky-2", "demo-2.sandbox.test", "y3ip-qff5-34rv-3cek"),
    BlueskyAccount("demo-bsky-3", "demo-3.sandbox.test", "jhwj-fzdo-6vdv-vaan"),
)


def demo_credentials_as_settings() -> list[dict[str, str]]:
    """``DEMO_CREDENTIALS`` then ``DEMO_BLUESKY_ACCOUNTS`` in tweetform's settings shape (fresh dicts).

    User entries carry app_key, app_secret, oauth_token, oauth_token_secret;
    app entries carry app_key, app_secret and bearer_token; Bluesky entries
    carry handle and app_password.
    """
    return [cred.as_settings() for cred in (*DEMO_CREDENTIALS, *DEMO_BLUESKY_ACCOUNTS)]
