"""Verify proxies the way tweetf0rm did at start: fetch the API through each one.

Each proxy gets one signed request to the API (``requests`` with
``requests-oauthlib`` for OAuth 1.0a user keys, a bearer token for app-only),
all proxies at once, each with a timeout. The verdict uses the same rules as
the crawl's ban policy (:mod:`tweetform.proxies.policy`): any answer from the
API — even a 401 or a 429 — shows the proxy carries requests; a refused,
dropped or timed-out connection, or an error page the proxy made itself, shows
it does not.

With pinning, a proxy is probed with a credential allowed on it, so a check
never shows an account from an address it is not pinned to; a proxy that no
credential may use is probed without one (the API's 401 still proves the path).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable

from tweetform.api.auth import basic_header, bearer_header
from tweetform.credentials import Credential
from tweetform.proxies.config import redact

if TYPE_CHECKING:
    import requests

# ``requests`` and the ban policy (which imports Scrapy's HTTP/1.1 download handler for its TunnelError) are
# imported by the probe itself: every scrapy start imports this module through ``scrapy proxies`` (COMMANDS_MODULE),
# and every crawl through the proxy middleware, most of them never checking a proxy (tests/test_startup.py)

DEFAULT_PATH = "/1.1/application/rate_limit_status.json"
PROXY_STATUS_NAMES = {407: "proxy authentication required", 401: "proxy refused the password", 403: "refused by the proxy",
                      500: "proxy could not connect", 502: "bad gateway", 503: "proxy unavailable", 504: "gateway timeout"}


@dataclass
class ProxyCheck:
    proxy: str  # as configured: may hold a password, never shown
    reachable: bool  # an HTTP answer came back from or through it
    latency: float | None  # seconds
    status: int | None
    usable: bool
    reason: str  # why, in a few words
    credential: str = ""  # alias the probe was signed with ("" = none)

    @property
    def shown(self) -> str:
        return redact(self.proxy)

    @property
    def verdict(self) -> str:
        return f"usable ({self.reason})" if self.usable else f"dead: {self.reason}"

    def as_dict(self) -> dict:
        return {"proxy": self.shown, "reachable": self.reachable,
                "latency_ms": None if self.latency is None else round(self.latency * 1000),
                "status": self.status, "usable": self.usable, "verdict": self.verdict, "credential": self.credential or None}


def _failure_reason(exc: BaseException) -> str:
    """A few words for a failed attempt (never the exception text: it may name URLs)."""
    import requests

    if isinstance(exc, requests.Timeout):
        return "timed out"
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop()
        if e in seen:
            continue
        seen.append(e)
        todo += [x for x in (e.__cause__, e.__context__, *getattr(e, "args", ())) if isinstance(x, BaseException)]
        reason = getattr(e, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)
    names = {type(e).__name__ for e in seen}
    text = " ".join(str(a) for e in seen for a in getattr(e, "args", ()) if isinstance(a, str)).lower()
    if "ConnectionRefusedError" in names or "connection refused" in text:
        return "connection refused"
    if names & {"ConnectTimeoutError", "ReadTimeoutError", "TimeoutError", "timeout"}:
        return "timed out"
    if names & {"ConnectionResetError", "RemoteDisconnected", "ProtocolError", "BrokenPipeError"}:
        return "connection dropped"
    if "NameResolutionError" in names or "gaierror" in names:
        return "proxy host not found"
    return type(exc).__name__


def _auth(session: requests.Session, cred: Credential | None, base: str, proxies: dict, timeout: float) -> tuple[object, dict]:
    """(requests auth, headers) for a probe signed with ``cred``."""
    if cred is None:
        return None, {}
    if cred.kind == "user":
        from requests_oauthlib import OAuth1

        return OAuth1(cred.app_key, cred.app_secret, cred.oauth_token, cred.oauth_token_secret), {}
    token = cred.bearer_token
    if not token:  # app key and secret: the token is fetched through the same proxy
        r = session.post(f"{base}/oauth2/token", data=b"grant_type=client_credentials", proxies=proxies, timeout=timeout,
                         headers={"Authorization": basic_header(cred),
                                  "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"})
        token = r.json().get("access_token", "") if r.status_code == 200 else ""
    return None, ({"Authorization": bearer_header(token)} if token else {})


def check_proxy(proxy: str, api_base: str, cred: Credential | None, *, timeout: float = 10.0,
                path: str = DEFAULT_PATH) -> ProxyCheck:
    """Fetch ``api_base + path`` through one proxy, signed with ``cred``, and judge the proxy."""
    import requests

    from tweetform.proxies.policy import is_api_answer, response_is_ban

    base = api_base.rstrip("/")
    alias = cred.alias if cred else ""
    proxies = {"http": proxy, "https": proxy}
    with requests.Session() as session:
        session.trust_env = False  # NO_PROXY / HTTP_PROXY from the environment must not bypass or replace the proxy
        started = time.monotonic()
        try:
            auth, headers = _auth(session, cred, base, proxies, timeout)
            started = time.monotonic()
            r = session.get(base + path, auth=auth, headers={"Accept": "application/json", **headers},
                            proxies=proxies, timeout=timeout, allow_redirects=False)
        except (requests.RequestException, ValueError) as exc:
            return ProxyCheck(proxy, False, None, None, False, _failure_reason(exc), alias)
        latency = time.monotonic() - started
    if response_is_ban(r.status_code, r.headers):
        name = PROXY_STATUS_NAMES.get(r.status_code, "error page")
        return ProxyCheck(proxy, True, latency, r.status_code, False, f"proxy error {r.status_code} ({name})", alias)
    if not is_api_answer(r.headers):
        return ProxyCheck(proxy, True, latency, r.status_code, True, "answered, but not like the API", alias)
    what = "API answered" if r.status_code == 200 else f"API answered {r.status_code}"
    return ProxyCheck(proxy, True, latency, r.status_code, True, what, alias)


def check_proxies(proxies: Iterable[str], api_base: str, credential_for: Callable[[str], Credential | None], *,
                  timeout: float = 10.0, path: str = DEFAULT_PATH, workers: int = 32) -> list[ProxyCheck]:
    """Check every proxy at once; results in the order given."""
    proxies = list(proxies)
    if not proxies:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(proxies))), thread_name_prefix="proxy-check") as pool:
        futures = [pool.submit(check_proxy, p, api_base, credential_for(p), timeout=timeout, path=path) for p in proxies]
        return [f.result() for f in futures]


def format_table(results: list[ProxyCheck]) -> str:
    rows = [("proxy", "reachable", "latency", "status", "credential", "verdict")]
    for r in results:
        rows.append((r.shown, "yes" if r.reachable else "no",
                     "-" if r.latency is None else f"{r.latency * 1000:.0f} ms",
                     "-" if r.status is None else str(r.status), r.credential or "-", r.verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1] for row in rows]
    usable = sum(r.usable for r in results)
    lines.append(f"{len(results)} prox{'y' if len(results) == 1 else 'ies'}: {usable} usable, {len(results) - usable} dead")
    return "\n".join(lines)


def credential_chooser(credentials: Iterable[Credential], allowed_on: Callable[[str, list[str]], list[str]],
                       prefer: str = "") -> Callable[[str], Credential | None]:
    """For each proxy, the credential to sign its probe: one allowed on that proxy (pinning),
    ``prefer`` if given and allowed, else user keys before bearer tokens before app key+secret."""
    creds = list(credentials)
    if prefer:
        creds = [c for c in creds if c.alias == prefer]
    creds.sort(key=lambda c: 0 if c.kind == "user" else 1 if c.bearer_token else 2)

    def choose(proxy: str) -> Credential | None:
        allowed = set(allowed_on(proxy, [c.alias for c in creds]))
        return next((c for c in creds if c.alias in allowed), None)

    return choose
