"""Nothing that leaves the process carries a credential: requests are stored without them.

A request is signed for each attempt at download time
(:class:`tweetform.middlewares.signing.SigningMiddleware` adds ``Authorization``,
Scrapy's ``HttpProxyMiddleware`` turns a ``user:password@`` proxy into
``Proxy-Authorization``), so a request that is queued — in Redis, in a
``JOBDIR`` disk queue — needs none of them: :func:`strip_credentials` removes
them from ``Request.to_dict()`` wherever a request is serialized, and the next
attempt is signed again.

:func:`quiet_credential_loggers` keeps the OAuth libraries' loggers quiet: at DEBUG,
oauthlib prints ``oauth_token`` and the signature base string of every signed
request, requests-oauthlib the signed headers.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from scrapy import squeues

#: headers a middleware adds for a credential or a proxy (compared case-insensitively)
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
#: meta keys that only make sense inside one attempt and may name a credential
CREDENTIAL_META = frozenset({"_auth_proxy"})
#: loggers that print tokens or signatures at DEBUG (kept at WARNING)
NOISY_LOGGERS = ("oauthlib", "requests_oauthlib")


def _name(key: Any) -> str:
    return (key.decode("latin-1") if isinstance(key, bytes) else str(key)).lower()


def without_userinfo(url: str) -> str:
    """``http://user:password@host:port`` -> ``http://host:port`` (unchanged when it has none)."""
    try:
        parts = urlsplit(url)
        if "@" not in parts.netloc:
            return url
    except ValueError:  # unparsable: still never keep what precedes the last "@"
        return url.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def strip_credentials(request_dict: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``Request.to_dict()`` without credential headers or credential-bearing meta.

    A proxy chosen by the rotating middleware is dropped (it is chosen again,
    with its password, for the next attempt); any other proxy keeps its address
    without its user info. The live request is not changed (``to_dict`` shares
    its ``meta``).
    """
    out = dict(request_dict)
    headers = out.get("headers")
    if headers:
        out["headers"] = {k: v for k, v in headers.items() if _name(k) not in CREDENTIAL_HEADERS}
    meta = out.get("meta")
    if meta:
        meta = {k: v for k, v in meta.items() if k not in CREDENTIAL_META}
        proxy = meta.get("proxy")
        if isinstance(proxy, str):
            if meta.get("_rotating_proxy"):
                del meta["proxy"]
            else:
                meta["proxy"] = without_userinfo(proxy)
        out["meta"] = meta
    return out


def quiet_credential_loggers() -> None:
    """Keep oauthlib's and requests-oauthlib's DEBUG lines (tokens, signatures) out of every log."""
    for name in NOISY_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


# --- Scrapy's disk queues (JOBDIR), storing requests without credentials --------------------

def _credential_free(name: str) -> type:
    """Scrapy's request disk queue ``scrapy.squeues.<name>``, pushing stripped request dicts."""
    queue_cls = getattr(squeues, name)

    class CredentialFreeQueue(queue_cls):  # type: ignore[valid-type,misc]
        def push(self, request: Any) -> None:
            # skip queue_cls.push (it serializes to_dict() as it is) for the serializing queue below it
            super(queue_cls, self).push(strip_credentials(request.to_dict(spider=self.spider)))

    CredentialFreeQueue.__name__ = CredentialFreeQueue.__qualname__ = name
    CredentialFreeQueue.__doc__ = f"scrapy.squeues.{name} without credential headers or meta."
    return CredentialFreeQueue


# SCHEDULER_DISK_QUEUE choices (tweetform's default: PickleLifoDiskQueue, as Scrapy's)
PickleFifoDiskQueue = _credential_free("PickleFifoDiskQueue")
PickleLifoDiskQueue = _credential_free("PickleLifoDiskQueue")
MarshalFifoDiskQueue = _credential_free("MarshalFifoDiskQueue")
MarshalLifoDiskQueue = _credential_free("MarshalLifoDiskQueue")
PickleFifoSQLiteQueue = _credential_free("PickleFifoSQLiteQueue")
PickleLifoSQLiteQueue = _credential_free("PickleLifoSQLiteQueue")
MarshalFifoSQLiteQueue = _credential_free("MarshalFifoSQLiteQueue")
MarshalLifoSQLiteQueue = _credential_free("MarshalLifoSQLiteQueue")
DISK_QUEUES = (PickleFifoDiskQueue, PickleLifoDiskQueue, MarshalFifoDiskQueue, MarshalLifoDiskQueue,
               PickleFifoSQLiteQueue, PickleLifoSQLiteQueue, MarshalFifoSQLiteQueue, MarshalLifoSQLiteQueue)
