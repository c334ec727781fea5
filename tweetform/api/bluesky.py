"""Bluesky on the crawler's side: identifiers checked before they are used, hosts, account sessions.

* DIDs (``did:plc:`` + 24 of ``[a-z2-7]``, or ``did:web:<host>``), handles and ``at://`` post URIs
  are validated with one clear line; a DID is an output key (a file name), so nothing else may be one.
* Sessions (:class:`Sessions`): Bluesky accounts (``{"alias", "handle", "app_password"}``) log in
  with ``com.atproto.server.createSession`` on the PDS, refresh with ``refreshSession`` before the
  access token expires, and log in again after ``ExpiredToken``; ``createSession``'s own limits
  (per account per 5 minutes and per day) are kept on this side, never hammered. Tokens and app
  passwords live in this object only: never in a request carried out of the process (signing adds
  them per attempt), a log line, stats or output.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from tweetform.credentials import Credential

logger = logging.getLogger(__name__)

DID = re.compile(r"^did:(plc:[a-z2-7]{24}|web:[a-zA-Z0-9.-]{1,253})$")
HANDLE = re.compile(r"^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
POST_URI = re.compile(r"^at://(did:(?:plc:[a-z2-7]{24}|web:[a-zA-Z0-9.-]{1,253}))/app\.bsky\.feed\.post/([234567abcdefghij][234567a-z]{12})$")
SESSION_LIMITS = ((30, 300.0), (300, 86400.0))  # createSession: 30 per 5 minutes, 300 a day, per account
REFRESH_BEFORE = 120.0  # seconds before an access token's exp it is refreshed


def is_did(value: str) -> bool:
    return isinstance(value, str) and bool(DID.match(value))


def is_handle(value: str) -> bool:
    return isinstance(value, str) and len(value) <= 253 and bool(HANDLE.match(value))


def did_key(did: str) -> int:
    """A DID as the positive 63-bit integer the job state's user claims take (a hash: collisions are
    negligible below billions of users)."""
    return int.from_bytes(hashlib.blake2b(did.encode(), digest_size=8).digest(), "big") >> 1 or 1


def post_key(uri: str) -> str:
    """A post's output key: ``<did>_<rkey>`` (both checked), from its ``at://`` URI."""
    m = POST_URI.match(uri)
    if m is None:
        raise ValueError(f"{uri[:80]!r} is not an at:// post URI")
    return f"{m.group(1)}_{m.group(2)}"


def uri_key(uri: str) -> int:
    """A post's ``at://`` URI as the job state's claim id (``cascade`` claims posts as ``friends`` claims DIDs)."""
    return did_key(uri)


def is_post_uri(value: Any) -> bool:
    return isinstance(value, str) and bool(POST_URI.match(value))


def root_of(post: dict[str, Any]) -> str:
    """The URI of the thread a postView belongs to: its record's ``reply.root``, or its own."""
    reply = (post.get("record") or {}).get("reply") if isinstance(post.get("record"), dict) else None
    root = ((reply or {}).get("root") or {}).get("uri") if isinstance(reply, dict) else None
    return root if is_post_uri(root) else str(post.get("uri") or "")


def is_reply(post: dict[str, Any]) -> bool:
    record = post.get("record")
    return isinstance(record, dict) and isinstance(record.get("reply"), dict)


def listed(value: Any) -> list[Any]:
    """A member that should be a list, or nothing: an answer or a page not in the lexicon's shape is read, not trusted."""
    return value if isinstance(value, list) else []


def missing_uris(body: Any, asked: list[str]) -> list[str]:
    """The asked-for URIs a getPosts answer left out (the AppView drops missing posts silently)."""
    got = {p.get("uri") for p in listed(body.get("posts") if isinstance(body, dict) else None) if isinstance(p, dict)}
    return [uri for uri in asked if uri not in got]


def thread_below(thread: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A getPostThread answer's ``thread``: the postViews of every reply under its post, at any level
    (depth first, in the AppView's order), and the ``notFoundPost``/``blockedPost`` members met."""
    posts: list[dict[str, Any]] = []
    missing: list[dict[str, Any]] = []
    stack = list(reversed(listed(thread.get("replies") if isinstance(thread, dict) else None)))
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        if node.get("notFound") or node.get("blocked") or not isinstance(node.get("post"), dict):
            missing.append(node)
            continue
        posts.append(node["post"])
        stack.extend(reversed(listed(node.get("replies"))))
    return posts, missing


def jwt_exp(token: str) -> float | None:
    """The ``exp`` of a JWT (read, not verified: the PDS verifies it), or None."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


class SessionError(RuntimeError):
    """No account could give a session; the message names aliases only."""


@dataclass
class _Session:
    account: Credential
    access: str = field(default="", repr=False)
    refresh: str = field(default="", repr=False)
    expires: float = 0.0
    logins: deque = field(default_factory=deque)  # times of this process's createSession calls (a 429 is none)
    waits_until: float = 0.0  # may not log in before (createSession's limits, or its 429's reset)


#: (url, json body or None, bearer token or None) -> (status, parsed body, headers)
Post = Callable[[str, dict[str, Any] | None, str | None], Awaitable[tuple[int, Any, dict[str, str]]]]


class Sessions:
    """One session per Bluesky account, shared by the requests that need one (searchPosts)."""

    def __init__(self, accounts: list[Credential], pds: str | None, post: Post, *, clock: Callable[[], float] = time.time,
                 limits: tuple[tuple[int, float], ...] = SESSION_LIMITS) -> None:
        self.sessions = [_Session(a) for a in accounts]
        self.pds = (pds or "").rstrip("/")
        self.post = post
        self.clock = clock
        self.limits = limits
        self.retired: dict[str, str] = {}
        self._lock = asyncio.Lock()
        self._turn = 0
        self.created = self.refreshed = 0

    def usable(self) -> list[_Session]:
        return [s for s in self.sessions if s.account.alias not in self.retired]

    async def token(self) -> tuple[str, str]:
        """``(account alias, access token)`` of a live session (logging in or refreshing first). An account
        that must wait to log in again is skipped; when all must, the wait happens outside the lock."""
        while True:
            async with self._lock:
                found = await self._live_session()
            if isinstance(found, tuple):
                return found
            await asyncio.sleep(found)

    async def _live_session(self) -> tuple[str, str] | float:
        """A live session's ``(alias, token)``, or how long until an account may log in again."""
        usable = self.usable()
        for _ in range(len(usable)):
            session = usable[self._turn % len(usable)]
            self._turn += 1
            if session.access and self.clock() < session.expires - REFRESH_BEFORE:
                return session.account.alias, session.access
            if session.refresh and await self._refresh(session):
                return session.account.alias, session.access
            if self.clock() >= session.waits_until:
                session.waits_until = self._login_allowed_at(session)
            if self.clock() >= session.waits_until:
                await self._login(session)
                if session.access and session.account.alias not in self.retired:
                    return session.account.alias, session.access
        usable = self.usable()
        if not usable:
            aliases = ", ".join(s.account.alias for s in self.sessions) or "none"
            raise SessionError(f"no Bluesky account can log in (accounts: {aliases}); searchPosts needs one")
        return max(0.0, min(s.waits_until for s in usable) - self.clock())

    def expired(self, alias: str, token: str | None = None) -> None:
        """The PDS said ExpiredToken: the next use refreshes (or logs in again)."""
        for s in self.sessions:
            if s.account.alias == alias and (token is None or s.access == token):
                s.access, s.expires = "", 0.0

    async def _refresh(self, session: _Session) -> bool:
        status, body, _ = await self.post(f"{self.pds}/xrpc/com.atproto.server.refreshSession", None, session.refresh)
        session.refresh = ""
        if status != 200 or not isinstance(body, dict) or not body.get("accessJwt"):
            logger.info("Bluesky account %r: refreshSession refused (HTTP %s): logging in again", session.account.alias, status)
            return False
        self._take(session, body)
        self.refreshed += 1
        return True

    async def _login(self, session: _Session) -> None:
        session.logins.append(self.clock())
        body_in = {"identifier": session.account.handle, "password": session.account.app_password}
        status, body, headers = await self.post(f"{self.pds}/xrpc/com.atproto.server.createSession", body_in, None)
        if status == 429:  # the PDS counts differently (per IP too): this account waits for its reset
            session.logins.pop()  # refused before any login: it spends none of this process's allowance
            reset = _number(headers.get("ratelimit-reset"))
            session.waits_until = self.clock() + (min(86400.0, max(1.0, reset - self.clock())) if reset else 60.0)
            logger.warning("Bluesky account %r: createSession answered 429, waiting %.0f s",
                           session.account.alias, session.waits_until - self.clock())
            return
        if status != 200 or not isinstance(body, dict) or not body.get("accessJwt"):
            name = body.get("error") if isinstance(body, dict) else None
            self.retired[session.account.alias] = f"createSession refused it (HTTP {status}{', ' + str(name) if name else ''})"
            logger.error("Bluesky account %r taken out of rotation: %s", session.account.alias, self.retired[session.account.alias])
            return
        self._take(session, body)
        self.created += 1
        logger.info("Bluesky account %r logged in", session.account.alias)

    def _login_allowed_at(self, session: _Session) -> float:
        """When one more createSession stays within each of its windows (now, or later: logged once)."""
        now = self.clock()
        waits = [0.0]
        for most, window in self.limits:
            recent = [t for t in session.logins if t > now - window]
            if len(recent) >= most:
                waits.append(recent[-most] + window - now)
        if max(waits) > 0:
            logger.warning("Bluesky account %r: createSession limit reached, waiting %.0f s", session.account.alias, max(waits))
        return now + max(waits)

    def _take(self, session: _Session, body: dict[str, Any]) -> None:
        session.access, session.refresh = str(body["accessJwt"]), str(body.get("refreshJwt") or "")
        exp = jwt_exp(session.access)
        session.expires = exp if exp is not None else self.clock() + 600.0


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
