"""The ban policy that knows the API (``ROTATING_PROXY_BAN_POLICY``).

scrapy-rotating-proxies' default policy calls every status but 200/301/302 a
ban, so an API 429 or 503 kills a healthy proxy for minutes. Here the question
is only: did the proxy carry the request to the API and an answer back?

* An answer from the API is never a ban, whatever its status (429, 401, 404,
  5xx…). An answer is the API's when it carries the API's marks: a JSON body
  type or the API's ``x-rate-limit-*`` / ``x-*-limit-24hour-*`` /
  ``x-transaction-id`` / ``x-connection-hash`` headers.
* An error the proxy made itself is a ban: ``407`` always (the API never sends
  it), and any other status of 400 or more without the API's marks (a proxy's
  HTML "502 Bad Gateway", tinyproxy's "500 Unable to connect", an ACL's 403).
* A connection refused, reset, dropped before any answer, or timed out
  through the proxy is a ban; so is a failed CONNECT tunnel.
* A body cut short after the answer began (the API dropped it) is no news about
  the proxy: neither ban nor proof of health.

The functions take plain values so a spider or a test can call them without a
crawler; :class:`ApiBanPolicy` only adapts them to the library's interface.
"""

from __future__ import annotations

from typing import Any, Mapping

from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from twisted.internet import error as tx_error
from twisted.web.client import ResponseNeverReceived

try:  # Scrapy's CONNECT tunnel failure (https through a proxy)
    from scrapy.core.downloader.handlers.http11 import TunnelError
except ImportError:  # pragma: no cover
    TunnelError = type("TunnelError", (Exception,), {})  # type: ignore[misc,assignment]

API_HEADER_PREFIXES = ("x-rate-limit-", "x-app-limit-", "x-user-limit-", "x-app-rate-limit-")
API_HEADERS = ("x-transaction-id", "x-connection-hash", "x-access-level")

#: failures that say the proxy did not carry the request (not an API answer)
BAN_EXCEPTIONS: tuple[type[BaseException], ...] = (
    DownloadConnectionRefusedError,
    DownloadTimeoutError,
    CannotResolveHostError,  # the proxy's own host name
    TunnelError,
    tx_error.ConnectError,  # refused, no route, TCP timeout, DNS
    tx_error.TimeoutError,
    tx_error.ConnectionLost,
    tx_error.ConnectionDone,
    ResponseNeverReceived,
    ConnectionError,  # reset, aborted, refused (builtin)
    TimeoutError,
)


def _header_names(headers: Mapping[Any, Any]) -> list[str]:
    return [(k.decode("latin-1") if isinstance(k, bytes) else str(k)).lower() for k in headers.keys()]


def _header(headers: Mapping[Any, Any], name: str) -> str:
    for key in headers.keys():
        k = key.decode("latin-1") if isinstance(key, bytes) else str(key)
        if k.lower() == name:
            value = headers[key]
            if isinstance(value, list):
                value = value[0] if value else b""
            return value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return ""


def is_api_answer(headers: Mapping[Any, Any]) -> bool:
    """Does an answer carry the API's marks (JSON, or its rate-limit/transaction headers)?"""
    names = _header_names(headers)
    if any(n.startswith(API_HEADER_PREFIXES) or n in API_HEADERS for n in names):
        return True
    return "json" in _header(headers, "content-type").lower()


def response_is_ban(status: int, headers: Mapping[Any, Any]) -> bool:
    """True when the proxy, not the API, answered with an error."""
    if status == 407:
        return True
    if status < 400:
        return False
    return not is_api_answer(headers)


def exception_is_ban(exception: BaseException) -> bool | None:
    """True: the proxy failed; None: says nothing about the proxy."""
    if isinstance(exception, (IgnoreRequest, ResponseDataLossError)):
        return None
    if isinstance(exception, DownloadFailedError):
        # Scrapy wraps Twisted's ResponseFailed; only "never received" blames the proxy
        cause = exception.__cause__
        return True if isinstance(cause, ResponseNeverReceived) else None
    if isinstance(exception, BAN_EXCEPTIONS):
        return True
    return None


#: failures in the connect phase: the request never left for the API (its quota was not spent)
NEVER_SENT_EXCEPTIONS: tuple[type[BaseException], ...] = (
    DownloadConnectionRefusedError,
    CannotResolveHostError,
    TunnelError,
    tx_error.ConnectError,
    ConnectionRefusedError,
)


def never_reached_api(exception: BaseException) -> bool:
    """True when a proxied request failed before the proxy could forward it (connect phase)."""
    return isinstance(exception, NEVER_SENT_EXCEPTIONS)


def describe(exception: BaseException) -> str:
    """A short reason for a log line (no URL: a proxy URL may hold a password)."""
    if isinstance(exception, DownloadFailedError) and exception.__cause__ is not None:
        inner = getattr(exception.__cause__, "reasons", None) or []
        names = sorted({type(getattr(r, "value", r)).__name__ for r in inner})
        return f"{type(exception.__cause__).__name__}({', '.join(names)})" if names else type(exception.__cause__).__name__
    return type(exception).__name__


class ApiBanPolicy:
    """``ROTATING_PROXY_BAN_POLICY = "tweetform.proxies.policy.ApiBanPolicy"``."""

    def response_is_ban(self, request: Any, response: Any) -> bool:
        return response_is_ban(response.status, response.headers)

    def exception_is_ban(self, request: Any, exception: BaseException) -> bool | None:
        return exception_is_ban(exception)
