"""API credentials from settings: ``TWEETFORM_CREDENTIALS`` or tweetf0rm's config.json.

A :class:`Credential` keeps its secrets out of ``repr`` and ``str`` so that
logging one, or an exception that mentions one, can never leak them: only the
alias is ever shown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

USER_KEYS = ("app_key", "app_secret", "oauth_token", "oauth_token_secret")


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

    @property
    def kind(self) -> str:
        """"user" (OAuth 1.0a user context) or "app" (app-only bearer token)."""
        return "user" if self.oauth_token and self.oauth_token_secret else "app"

    @property
    def needs_bearer_fetch(self) -> bool:
        return self.kind == "app" and not self.bearer_token

    def secrets(self) -> list[str]:
        """Every secret value, for redaction checks."""
        return [s for s in (self.app_secret, self.oauth_token, self.oauth_token_secret, self.bearer_token) if s]

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
    known = set(USER_KEYS) | {"alias", "bearer_token", "proxies", "proxy"}
    unknown = sorted(str(k) for k in set(entry) - known)
    if unknown:
        raise CredentialError(f"credential {alias!r}: unknown keys {unknown}")
    for key in (*USER_KEYS, "bearer_token", "proxy"):
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
    values = {k: str(entry.get(k) or "") for k in (*USER_KEYS, "bearer_token")}
    proxies = entry.get("proxies") or ([entry["proxy"]] if entry.get("proxy") else [])
    cred = Credential(alias=alias, proxies=tuple(proxies), **values)
    has_user = all(values[k] for k in USER_KEYS)
    partial_user = any(values[k] for k in ("oauth_token", "oauth_token_secret")) and not has_user
    has_app = bool(values["app_key"] and values["app_secret"])
    if partial_user:
        raise CredentialError(f"credential {alias!r}: user context needs app_key, app_secret, oauth_token and oauth_token_secret")
    if not (has_user or values["bearer_token"] or has_app):
        raise CredentialError(f"credential {alias!r}: needs OAuth 1.0a user keys, a bearer_token, or app_key and app_secret")
    return cred


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


def load_credentials(settings: Any) -> list[Credential]:
    """Credentials from Scrapy settings (inline list first, then the file)."""
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
    if path:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise CredentialError(f"TWEETFORM_CREDENTIALS_FILE: cannot read {path}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise CredentialError(f"TWEETFORM_CREDENTIALS_FILE: {path} is not JSON (line {exc.lineno})") from None
        creds.extend(parse_credentials(data, source=str(path)))
    return creds
