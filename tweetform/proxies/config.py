"""Where proxies come from, how they are shown, and which credential may use which.

Sources, all merged (duplicates once): ``ROTATING_PROXY_LIST``,
``ROTATING_PROXY_LIST_PATH`` (one proxy a line, ``#`` comments), tweetf0rm's
``proxy.json`` via ``TWEETFORM_PROXY_FILE`` in either of its shapes —
``{"proxies": ["ip:port", …]}`` or ``{"proxies": [{"ip:port": "http"}, …]}``
(a bare list of either kind is read too) — and every proxy a credential is
pinned to. A proxy is ``[scheme://][user:password@]host:port``; without a
scheme it is ``http://``.

Pinning comes from a credential entry's ``proxies`` (or ``proxy``) key or from
``TWEETFORM_CREDENTIAL_PROXIES`` (``{"alias": "host:port"}`` or ``{"alias":
["host:port", …]}``; the setting wins over the entry). A pinned proxy is named
by its ``host:port``, so a pin need not repeat a password.

Only :func:`redact` ever turns a proxy into text for people: the password
becomes ``***``.
"""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit

from tweetform.credentials import Credential

SCHEMES = ("http", "https")


class ProxyConfigError(ValueError):
    """A proxy setting that cannot be used; the message never holds a password."""


def redact(proxy: str) -> str:
    """The proxy as it may be shown: ``http://user:***@host:port``."""
    text = proxy.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    userinfo, at, hostport = rest.rpartition("@")
    if not at:
        return text
    user, colon, _ = userinfo.partition(":")
    shown = f"{user}:***" if colon else user
    return f"{scheme}{sep}{shown}@{hostport}"


def normalize(proxy: Any, where: str = "proxy") -> str:
    """``scheme://[user:password@]host:port`` (``http://`` added when missing); ProxyConfigError if unusable."""
    if not isinstance(proxy, str) or not proxy.strip():
        raise ProxyConfigError(f"{where}: a proxy must be a non-empty string like 'host:port'")
    text = proxy.strip()
    if "://" not in text:
        text = "http://" + text
    shown = redact(text)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ProxyConfigError(f"{where}: {shown!r} is not a proxy address (host:port)") from None
    if parts.scheme not in SCHEMES:
        raise ProxyConfigError(f"{where}: {shown!r}: only http:// and https:// proxies are supported")
    if not parts.hostname or port is None or parts.path not in ("", "/") or parts.query:
        raise ProxyConfigError(f"{where}: {shown!r} is not a proxy address (host:port)")
    return text.rstrip("/")


def hostport(proxy: str) -> str:
    """``host:port`` of a proxy: the name a pin uses and the key of its health state."""
    parts = urlsplit(proxy if "://" in proxy else "http://" + proxy.strip())
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"{host}:{parts.port}"


def parse_proxy_file(data: Any, source: str = "TWEETFORM_PROXY_FILE") -> list[str]:
    """Proxies of tweetf0rm's proxy.json, either shape (or a bare list)."""
    items = data.get("proxies") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ProxyConfigError(f"{source}: expected {{\"proxies\": [...]}} (tweetf0rm's proxy.json) or a list of proxies")
    found: list[str] = []
    for i, item in enumerate(items):
        where = f"{source} proxies[{i}]"
        if isinstance(item, dict):  # tweetf0rm's later shape: {"ip:port": "http"}
            if len(item) != 1:
                raise ProxyConfigError(f"{where}: expected one {{\"ip:port\": \"http\"}} pair")
            ((address, scheme),) = item.items()
            scheme = str(scheme or "http").lower()
            found.append(normalize(address if "://" in str(address) else f"{scheme}://{address}", where))
        else:
            found.append(normalize(item, where))
    return found


def _as_list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            return [str(v) for v in json.loads(stripped)]
        return [line.strip() for line in stripped.replace("\n", ",").split(",") if line.strip()]
    return [str(v) for v in value]


def load_proxy_list(settings: Any) -> list[str]:
    """Every configured proxy (not yet the pinned ones), normalized, each once, in order."""
    proxies: list[str] = []
    for raw in _as_list(settings.get("ROTATING_PROXY_LIST")):
        if not raw.startswith("#"):
            proxies.append(normalize(raw, "ROTATING_PROXY_LIST"))
    path = settings.get("ROTATING_PROXY_LIST_PATH")
    if path:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ProxyConfigError(f"ROTATING_PROXY_LIST_PATH: cannot read {path}: {exc.strerror}") from None
        for n, line in enumerate(lines, 1):
            if line.strip() and not line.strip().startswith("#"):
                proxies.append(normalize(line, f"{path} line {n}"))
    path = settings.get("TWEETFORM_PROXY_FILE")
    if path:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ProxyConfigError(f"TWEETFORM_PROXY_FILE: cannot read {path}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise ProxyConfigError(f"TWEETFORM_PROXY_FILE: {path} is not JSON (line {exc.lineno})") from None
        proxies.extend(parse_proxy_file(data, str(path)))
    return _unique(proxies)


def _unique(proxies: Iterable[str]) -> list[str]:
    seen: dict[str, str] = {}
    for proxy in proxies:
        seen.setdefault(hostport(proxy), proxy)
    return list(seen.values())


@dataclass
class ProxyPlan:
    """All proxies of this process and the pins: alias -> host:port names it may use."""

    proxies: list[str] = field(default_factory=list)
    pins: dict[str, frozenset[str]] = field(default_factory=dict)

    def allowed(self, alias: str | None) -> frozenset[str] | None:
        """host:port names a credential may use; None if it is not pinned (any proxy)."""
        return self.pins.get(alias) if alias else None

    def credentials_for(self, proxy: str, aliases: Iterable[str]) -> list[str]:
        """Of these aliases, those that may appear through this proxy (pinned to it, or not pinned)."""
        key = hostport(proxy)
        return [a for a in aliases if a not in self.pins or key in self.pins[a]]


def pins_setting(settings: Any) -> dict[str, list[str]]:
    raw = settings.get("TWEETFORM_CREDENTIAL_PROXIES") or {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError:
            raise ProxyConfigError("TWEETFORM_CREDENTIAL_PROXIES is not JSON") from None
    if not isinstance(raw, Mapping):
        raise ProxyConfigError('TWEETFORM_CREDENTIAL_PROXIES must map aliases to proxies: {"alias": ["host:port"]}')
    out: dict[str, list[str]] = {}
    for alias, value in raw.items():
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not value:
            raise ProxyConfigError(f"TWEETFORM_CREDENTIAL_PROXIES[{alias!r}]: give a proxy or a non-empty list of proxies")
        out[str(alias)] = [str(v) for v in value]
    return out


def plan(settings: Any, credentials: Iterable[Credential]) -> ProxyPlan:
    """The proxies and pins of this process; pinned proxies missing from the list are added to it."""
    direct_lane_name(settings)  # checked with the other proxy settings (the lane used without proxies)
    proxies = load_proxy_list(settings)
    by_key = {hostport(p): p for p in proxies}
    creds = {c.alias: c for c in credentials}
    pinned: dict[str, list[str]] = {alias: list(c.proxies) for alias, c in creds.items() if c.proxies}
    for alias, values in pins_setting(settings).items():
        if alias not in creds:
            raise ProxyConfigError(f"TWEETFORM_CREDENTIAL_PROXIES: no credential with alias {alias!r}")
        pinned[alias] = values
    pins: dict[str, frozenset[str]] = {}
    for alias, values in pinned.items():
        keys = []
        for value in values:
            proxy = normalize(value, f"proxies of credential {alias!r}")
            key = hostport(proxy)
            if key not in by_key:
                by_key[key] = proxy
                proxies.append(proxy)
            elif "@" in proxy and "@" not in by_key[key]:  # the pin carries the password the list left out
                proxies[proxies.index(by_key[key])] = by_key[key] = proxy
            keys.append(key)
        pins[alias] = frozenset(keys)
    return ProxyPlan(proxies=proxies, pins=pins)


LANE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def direct_lane_name(settings: Any) -> str:
    """The name of this host's own IP (its direct lane): ``TWEETFORM_DIRECT_LANE``, or the host name.
    Hosts behind one NAT share an IP: they give the same name, so they share one limit."""
    name = str(settings.get("TWEETFORM_DIRECT_LANE") or "").strip()
    if name:
        if not LANE_NAME.match(name):
            raise ProxyConfigError("TWEETFORM_DIRECT_LANE: give a name of letters, digits, '.', '_' or '-' "
                                   "(up to 100, e.g. lab-nat)")
        return name
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()).lstrip("._-")[:100]
    return host or "localhost"


def ip_lanes(proxies: list[str], direct: str = "localhost") -> list[Credential]:
    """Bluesky's lanes: one per proxy (pinned to it, named by its host:port, never its password), or this
    host's direct one, ``ip:direct:<name>`` (:func:`direct_lane_name`). Workers sharing quota through
    Redis share a lane of the same name: every worker using a proxy, or the workers of one host (or NAT)."""
    if not proxies:
        return [Credential(alias=f"ip:direct:{direct}", ip_lane=True)]
    return [Credential(alias=f"ip:{hostport(p)}", proxies=(p,), ip_lane=True) for p in proxies]
