"""The streaming connection: one long ``GET /2/tweets/search/stream``, read line by line.

Why a small dedicated client (aiohttp, on the asyncio loop Scrapy's reactor
already runs) rather than a Scrapy request: Scrapy's downloader hands a
callback the *whole* response, and a stream never ends; its download timeout
bounds the whole download, not the silence between lines; and the
``bytes_received`` signal fires only when bytes arrive, so a stalled stream
(no bytes at all) cannot be noticed or cut from it without reaching into the
downloader's internals. Here each line is read with its own timeout, so a
keep-alive resets the silence clock and a stall is a timeout like any other,
and the whole reconnect policy is plain code a test can drive against the
sandbox. The spider (:mod:`tweetform.spiders.stream`) turns what this yields
into items for the usual pipelines.

Reconnecting follows the API's rules (``handling-disconnections``): network
errors (refused, reset, a line cut short, silence) back off linearly, +250 ms
up to 16 s; HTTP errors exponentially from 5 s up to 320 s; 429s from 60 s,
doubling. The counters reset once a line (or keep-alive) arrives. Every
reconnect asks for ``backfill_minutes`` so what was sent in the gap comes
again; the spider drops what it already has.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, AsyncIterator
from urllib.parse import urlencode

import orjson

from tweetform.credentials import Credential
from tweetform.stream import STREAM_PATH
from tweetform.stream.app import token_from, token_request

logger = logging.getLogger(__name__)

#: finish reasons of a stream that cannot go on (tweetform.exitcodes maps them)
BUSY = "stream_connection_limit"
NO_RULES = "stream_no_rules"
REFUSED = "stream_refused"


@dataclass
class Backoff:
    """Seconds to wait before the next attempt, by what went wrong (the API's reconnect rules)."""

    network: int = 0
    http: int = 0
    rate: int = 0

    def after(self, kind: str) -> float:
        if kind == "network":
            self.network += 1
            return min(16.0, 0.25 * self.network)
        if kind == "http":
            self.http += 1
            return min(320.0, 5.0 * 2 ** (self.http - 1))
        self.rate += 1
        return 60.0 * 2 ** min(self.rate - 1, 10)

    def reset(self) -> None:
        self.network = self.http = self.rate = 0


class StreamStopped(Exception):
    """The stream cannot go on: ``reason`` is the crawl's finish reason, ``line`` what to tell the user."""

    def __init__(self, reason: str, line: str) -> None:
        super().__init__(line)
        self.reason = reason
        self.line = line


@dataclass
class Delivered:
    body: dict[str, Any]  # one line of the stream, parsed
    raw: bytes  # the line as received (without its \r\n)
    at: float  # when it arrived, on the API's clock (the connection's Date header, plus time since)
    connection: int  # which connection of this run (1 = the first)


class StreamClient:
    def __init__(self, api_base: str, cred: Credential, params: dict[str, str], *, backfill_minutes: int,
                 read_timeout: float, stats: Any = None, backfill_first: bool = False) -> None:
        self.base = api_base.rstrip("/")
        self.cred = cred
        self.params = params
        self.backfill_minutes = backfill_minutes
        self.backfill_first = backfill_first  # a job resumed (JOBDIR): its first connection asks for backfill too
        self.read_timeout = read_timeout
        self.stats = stats
        self.backoff = Backoff()
        self.connections = 0
        self.keepalives = 0
        self._bearer = cred.bearer_token

    def next_url(self) -> str:
        """The URL of the next attempt: reconnects (and a resumed job's first connection) ask for backfill."""
        return self.url(self.backfill_minutes if self.connections or self.backfill_first else 0)

    def url(self, backfill: int) -> str:
        """The stream URL of an attempt: reconnects ask for ``backfill_minutes``, a new job's first connection for none."""
        params = {**self.params, **({"backfill_minutes": str(backfill)} if backfill else {})}
        return f"{self.base}{STREAM_PATH}?{urlencode(params, safe=',')}"

    def _inc(self, key: str) -> None:
        if self.stats is not None:
            self.stats.inc_value(f"tweetform/stream/{key}")

    async def _token(self, session: Any) -> str:
        if not self._bearer:
            url, headers, body = token_request(self.base, self.cred)
            async with session.post(url, data=body, headers=headers) as resp:
                self._bearer = token_from(resp.status, _loads(await resp.read()), self.cred)
        return self._bearer

    async def deliveries(self, deadline: float | None = None) -> AsyncIterator[Delivered]:
        """Every line the stream sends (keep-alives aside), across reconnects, until ``deadline`` (monotonic)."""
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=None, connect=self.read_timeout, sock_connect=self.read_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while not _past(deadline):
                url = self.next_url()
                try:
                    headers = {"Authorization": f"Bearer {await self._token(session)}", "Accept": "application/json"}
                    # the answer's headers may take a while (the API warms up a stream), never past the deadline
                    resp = await asyncio.wait_for(session.get(url, headers=headers), _left(deadline))
                    async with resp:
                        if resp.status != 200:
                            wait = self._refused(resp.status, _loads(await resp.read()))
                        else:
                            self.connections += 1
                            self._inc("connects")
                            logger.info("stream connected (app credential %s)%s", self.cred.alias,
                                        f", asking for {self.backfill_minutes} minute(s) of backfill" if "backfill_minutes=" in url else "")
                            async for delivered in self._read(resp, deadline):
                                yield delivered
                            if _past(deadline):
                                return
                            wait = self.backoff.after("network")
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                    self._inc(f"disconnects/{type(exc).__name__}")
                    wait = self.backoff.after("network")
                    logger.warning("stream connection lost (%s); reconnecting in %.2f s", type(exc).__name__, wait)
                await _sleep(wait, deadline)

    async def _read(self, resp: Any, deadline: float | None) -> AsyncIterator[Delivered]:
        """The lines of one connection; returns when it goes silent or the server ends it (raises on a drop)."""
        start, mono = _epoch(resp.headers.get("Date")), time.monotonic()
        connection = self.connections
        while True:
            wait = self.read_timeout if deadline is None else min(self.read_timeout, deadline - time.monotonic())
            if wait <= 0:
                return
            try:
                line = await asyncio.wait_for(resp.content.readline(), wait)
            except asyncio.TimeoutError:
                if _past(deadline):
                    return
                self._inc("stalls")
                logger.warning("stream silent for %.1f s (no post, no keep-alive): reconnecting", self.read_timeout)
                return
            if not line.endswith(b"\n"):  # the server closed it (an empty read), or cut a line short
                self._inc("disconnects/closed" if not line else "disconnects/cut_line")
                logger.warning("stream closed by the server%s; reconnecting", "" if not line else " in the middle of a line")
                return
            self.backoff.reset()
            raw = line.strip()
            if not raw:
                self.keepalives += 1
                self._inc("keepalives")
                continue
            body = _loads(raw)
            if not isinstance(body, dict):
                self._inc("bad_lines")
                continue
            if "data" not in body and body.get("errors"):
                # in-stream errors (operational-disconnect and the like): the API ends the connection after them
                self._inc("disconnects/operational")
                logger.warning("stream error from the API: %s; reconnecting", _first_error(body))
                return
            yield Delivered(body, raw, start + (time.monotonic() - mono), connection)

    def _refused(self, status: int, body: Any) -> float:
        """What a non-200 answer to a connection means: seconds to wait, or StreamStopped."""
        issue = body.get("connection_issue") if isinstance(body, dict) else None
        kind = (body.get("type") or "") if isinstance(body, dict) else ""
        self._inc(f"refused/{status}")
        if status in (401, 403):
            raise StreamStopped("no_usable_credentials", f"the API rejected credential {self.cred.alias!r} "
                                f"(HTTP {status}): the filtered stream needs a valid app-only bearer token")
        if status == 429 and kind.endswith("usage-capped"):
            raise StreamStopped("budget_exhausted", f"the API's usage cap: {_first_error(body)}")
        if status == 429 and issue == "TooManyConnections" and not self.connections:
            raise StreamStopped(BUSY, f"another stream is already connected for the app of credential {self.cred.alias!r} "
                                "(the API allows one connection per app): stop it first, or use credential=ALIAS of another app")
        if status == 409:
            raise StreamStopped(NO_RULES, f"the app of credential {self.cred.alias!r} has no stream rules: add one with "
                                "`scrapy stream rules add \"QUERY\"`")
        if status == 400:
            raise StreamStopped(REFUSED, f"the API refused the stream request: {_first_error(body)}")
        wait = self.backoff.after("rate" if status == 429 else "http")
        logger.warning("stream refused with HTTP %s (%s); trying again in %.0f s", status, _first_error(body), wait)
        return wait


def _first_error(body: Any) -> str:
    if not isinstance(body, dict):
        return "no JSON body"
    inner = body.get("errors")
    if isinstance(inner, list) and inner and isinstance(inner[0], dict):
        first = inner[0]
        return str(first.get("message") or first.get("detail") or first.get("title") or first)
    return str(body.get("detail") or body.get("title") or "no detail")


def _loads(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def _epoch(date: str | None) -> float:
    try:
        return parsedate_to_datetime(date).timestamp() if date else time.time()
    except (TypeError, ValueError):
        return time.time()


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


async def _sleep(seconds: float, deadline: float | None) -> None:
    if deadline is not None:
        seconds = min(seconds, max(0.0, deadline - time.monotonic()))
    await asyncio.sleep(seconds)
