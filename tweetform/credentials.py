"""API credentials from settings: ``TWEETFORM_CREDENTIALS`` or tweetf0rm's config.json.

A :class:`Credential` keeps its secrets out of ``repr`` and ``str`` so that
logging one, or an exception that mentions one, can never leak them: only the
alias is ever shown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

USER_KEYS = ("app_key", "app_secret", "oauth_token", "oauth_token_secret")
KEYS = (*USER_KEYS, "bearer_token")
BLUESKY_KEYS = ("handle", "app_password")


class CredentialError(ValueError):
    """A credential entry that cannot be used; the message names the alias only."""


@dataclass(eq=False)
class Credential:
    alias: str
    app_key: str = field(default="", repr=False)
    app_secret: str = field(default="", repr=False)
    oauth_token: str = field(default="", repr=False)
    oauth_token_secret: str = field(default="", repr=False)
    bearer_token: str = field(default="", repr=False)
    proxies: tuple[str, ...] = field(default=(), repr=False)
    handle: str = ""  # a Bluesky account: its handle and app password (an X lane never uses it)
    app_password: str = field(default="", repr=False)
    ip_lane: bool = False  # not a credential: one client IP (direct, or a proxy) of Bluesky's per-IP limit

    @property
    def kind(self) -> str:
        """"user" (OAuth 1.0a user context), "app" (app-only bearer token) or "bluesky" (an account)."""
        if self.app_password:
            return "bluesky"
        if self.ip_lane:
            return "ip"
        return "user" if self.oauth_token and self.oauth_token_secret else "app"

    @property
    def needs_bearer_fetch(self) -> bool:
        return self.kind == "app" and not self.bearer_token

    def secrets(self) -> list[str]:
        """Every secret value, for redaction checks."""
        return [s for s in (self.app_secret, self.oauth_token, self.oauth_token_secret, self.bearer_token, self.app_password) if s]

    def __str__(self) -> str:
        return f"credential {self.alias!r}"


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", tuple: "a list", bool: "a boolean", int: "a number", float: "a number", str: "a string"}.get(
        type(value), type(value).__name__)


def _from_entry(entry: Any, where: str) -> Credential:
    if not isinstance(entry, dict):
        raise CredentialError(f"{where}: a credential must be an object with an alias and keys, not {_type_name(entry)}")
    if entry.get("alias") is not None and not isinstance(entry["alias"], str):
        raise CredentialError(f"{where}: alias must be a string, not {_type_name(entry['alias'])}")
    alias = str(entry.get("alias") or "").strip()
    if not alias:
        raise CredentialError(f"{where}: credential has no alias")
    known = {*KEYS, *BLUESKY_KEYS, "alias", "proxies", "proxy"}
    unknown = sorted(str(k) for k in set(entry) - known)
    if unknown:
        raise CredentialError(f"credential {alias!r}: unknown keys {unknown}")
    for key in (*KEYS, *BLUESKY_KEYS, "proxy"):
        # the value is never shown: it may be a secret
        if entry.get(key) is not None and not isinstance(entry[key], str):
            raise CredentialError(f"credential {alias!r}: {key} must be a string, not {_type_name(entry[key])}")
    proxies_value = entry.get("proxies")
    if proxies_value is not None and not (
        isinstance(proxies_value, str) or (isinstance(proxies_value, list) and all(isinstance(p, str) for p in proxies_value))
    ):
        raise CredentialError(f"credential {alias!r}: proxies must be a list of 'host:port' strings, not {_type_name(proxies_value)}")
    if isinstance(proxies_value, str):
        entry = {**entry, "proxies": [proxies_value]}
    proxies = entry.get("proxies") or ([entry["proxy"]] if entry.get("proxy") else [])
    if any(entry.get(k) for k in BLUESKY_KEYS):
        return _bluesky_entry(entry, alias, tuple(proxies))
    values = {k: str(entry.get(k) or "") for k in KEYS}
    problem = keys_problem(values)
    if problem:
        raise CredentialError(f"credential {alias!r}: {problem}")
    return Credential(alias=alias, proxies=tuple(proxies), **values)


def _bluesky_entry(entry: dict, alias: str, proxies: tuple[str, ...]) -> Credential:
    """``{"alias", "handle", "app_password"}``: a Bluesky account (an X key beside them is a mistake)."""
    mixed = sorted(k for k in KEYS if entry.get(k))
    if mixed:
        raise CredentialError(f"credential {alias!r}: a Bluesky account (handle, app_password) cannot also have {mixed}")
    handle, password = str(entry.get("handle") or ""), str(entry.get("app_password") or "")
    if not handle or not password:
        raise CredentialError(f"credential {alias!r}: a Bluesky account needs both handle and app_password")
    if any(c.isspace() for c in handle + password):
        raise CredentialError(f"credential {alias!r}: handle and app_password must not contain whitespace")
    return Credential(alias=alias, proxies=proxies, handle=handle.lower(), app_password=password)


def keys_problem(values: Mapping[str, str | None]) -> str | None:
    """What is wrong with one credential's keys ("" or None: not given), never quoting a value; None if
    nothing. The one set of rules, for tweetform's settings and files and for the sandbox's."""
    given = {k: v for k in KEYS if (v := values.get(k))}
    for key in KEYS:
        if key in given and any(c.isspace() for c in given[key]):
            return f"{key} must not contain whitespace"
    if "app_secret" in given and "app_key" not in given:
        return "app_key is missing (an app_secret goes with its app_key)"
    if "app_key" in given and not ("app_secret" in given or "bearer_token" in given):  # a bearer may name its app
        return "app_secret is missing (an app_key needs its app_secret, or a bearer_token)"
    if any(k in given for k in ("oauth_token", "oauth_token_secret")) and not all(k in given for k in USER_KEYS):
        return "user context needs app_key, app_secret, oauth_token and oauth_token_secret"
    if not ("app_key" in given or "bearer_token" in given):
        return "needs OAuth 1.0a user keys, a bearer_token, or app_key and app_secret"
    return None


def parse_credentials(data: Any, source: str = "TWEETFORM_CREDENTIALS") -> list[Credential]:
    """tweetform's list of entries, ``{"credentials": [...]}``, or tweetf0rm's ``{"apikeys": {...}}``."""
    if isinstance(data, dict) and "apikeys" in data:
        apikeys = data["apikeys"]
        if not isinstance(apikeys, dict):
            raise CredentialError(f"{source}: apikeys must be an object of name -> keys (tweetf0rm's config.json), not {_type_name(apikeys)}")
        for name, value in apikeys.items():
            if value is not None and not isinstance(value, dict):
                raise CredentialError(f"{source} apikeys[{name!r}]: must be an object of keys, not {_type_name(value)}")
        entries: Iterable[tuple[str, Any]] = (
            (f"{source} apikeys[{name!r}]", {"alias": name, **(value or {})}) for name, value in apikeys.items()
        )
    elif isinstance(data, dict) and "credentials" in data:
        if not isinstance(data["credentials"], list):
            raise CredentialError(f"{source}: credentials must be a list, not {_type_name(data['credentials'])}")
        entries = ((f"{source}[{i}]", e) for i, e in enumerate(data["credentials"]))
    elif isinstance(data, (list, tuple)):
        entries = ((f"{source}[{i}]", e) for i, e in enumerate(data))
    else:
        raise CredentialError(f"{source}: expected a list of credentials or tweetf0rm's config.json, not {_type_name(data)}")
    creds = [_from_entry(entry, where) for where, entry in entries]
    aliases = [c.alias for c in creds]
    dupes = sorted({a for a in aliases if aliases.count(a) > 1})
    if dupes:
        raise CredentialError(f"{source}: duplicate credential aliases {dupes}")
    return creds


def load_credentials(settings: Any, api: str = "x") -> list[Credential]:
    """Credentials from Scrapy settings (inline list first, then the file's entries of other aliases): every
    entry is checked;
    ``api`` "x" returns the X credentials, "bluesky" the Bluesky accounts, "all" both."""
    creds: list[Credential] = []
    inline = settings.get("TWEETFORM_CREDENTIALS") or []
    if isinstance(inline, str):
        try:
            inline = json.loads(inline)
        except json.JSONDecodeError as exc:
            raise CredentialError(f"TWEETFORM_CREDENTIALS is not JSON (line {exc.lineno} column {exc.colno})") from None
    if inline:
        creds.extend(parse_credentials(inline))
    path = settings.get("TWEETFORM_CREDENTIALS_FILE")
    if path and not isinstance(path, (str, Path)):
        raise CredentialError(f"TWEETFORM_CREDENTIALS_FILE must be a path (a string), not {_type_name(path)}")
    if path:  # an alias given inline too is the inline entry (one account, one session and login allowance)
        given = {c.alias for c in creds}
        creds.extend(c for c in read_credentials_file(path) if c.alias not in given)
    if api == "all":
        return creds
    return [c for c in creds if (c.kind == "bluesky") == (api == "bluesky")]


def read_credentials_file(path: str | Path, setting: str = "TWEETFORM_CREDENTIALS_FILE") -> list[Credential]:
    """A credentials file (any shape :func:`parse_credentials` reads); ``setting`` names it in errors."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CredentialError(f"{setting}: cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise CredentialError(f"{setting}: {path} is not JSON (line {exc.lineno} column {exc.colno})") from None
    except UnicodeDecodeError:
        raise CredentialError(f"{setting}: {path} is not UTF-8 text") from None
    return parse_credentials(data, source=str(path))
