"""The face's HTTP side: ``/xrpc/<NSID>`` on the sandbox's port, its truth and its counters.

Per request, as the PDS/AppView pair does it: the per-IP rate limit (``ratelimit-*``
headers on every answer; a client's IP is its address plus any proxy's Via, so each
proxy is its own lane), then the method, then the session, then the sandbox's faults,
then the answer, cached like the X side's (a pure function of the world's generation
and the query string).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections import OrderedDict, deque
from typing import Any

from aiohttp import web

from ..credentials import DEMO_BLUESKY_ACCOUNTS, BlueskyAccount, load_bluesky_accounts
from ..limits import RateLimiter
from ..world.common import bfs_expansion
from . import endpoints, ids, truth
from .sessions import Sessions
from .views import Views, iso
from .xrpc import Query, XrpcError, error

logger = logging.getLogger(__name__)
PROCEDURES = ("com.atproto.server.createSession", "com.atproto.server.refreshSession")
DEFAULTS: dict[str, Any] = {"rate": 3000, "window": 300, "access_ttl": 7200, "refresh_ttl": 90 * 86400,
                            "session_limits": (30, 300), "ratelimit_headers": True}


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=dumps(obj), content_type="application/json")


def pick_accounts(world: Any, accounts: list[BlueskyAccount]) -> dict[int, str]:
    """World users for the accounts whose handle is not a world user's: ordinary users with
    follows, followers and posts, from the middle of the popularity order (any seed, any size)."""
    wanted = [a for a in accounts if _world_uid(world, a.handle) is None]
    picked: dict[int, str] = {}
    n = world.users
    start = max(64, n // 2) if n > 64 else 0
    for k in range(n):
        if len(picked) == len(wanted):
            break
        uid = world.id_of((start + k) % n)
        if uid in picked or world.state(uid) != "normal":
            continue
        c = world.counts(uid)
        if 5 <= c.friends <= 200 and c.followers >= 1 and c.statuses >= 5:
            picked[uid] = wanted[len(picked)].handle
    return picked


def _world_uid(world: Any, handle: str) -> int | None:
    name = ids.screen_name_of_handle(handle)
    u = world.user_by_screen_name(name) if name else None
    return u.id if u is not None else None


class BlueskyFace:
    def __init__(self, sandbox: Any) -> None:
        self.sandbox = sandbox
        self.options = {**DEFAULTS, **(getattr(sandbox.config, "bluesky", None) or {})}
        creds = sandbox.config.credentials
        self.accounts = load_bluesky_accounts(creds) if creds else list(DEMO_BLUESKY_ACCOUNTS)
        self.handles = pick_accounts(sandbox.world, self.accounts)
        rate = int(self.options["rate"])
        self.limiter = RateLimiter(float(self.options["window"]), {"xrpc": (rate, rate)})
        self.sessions = Sessions(self.accounts, self._account_uid, lambda uid: self.views().status(uid),
                                 sandbox.clock.now, self.options)
        self._views: OrderedDict[int, Views] = OrderedDict()
        self.served_at: dict[str, deque[float]] = {}  # lane -> when its allowed requests arrived (the last 100,000; tests)

    def _account_uid(self, account: BlueskyAccount) -> int | None:
        for uid, handle in self.handles.items():
            if handle == account.handle:
                return uid
        return _world_uid(self.sandbox.world, account.handle)

    def views(self, generation: int | None = None) -> Views:
        g = self.sandbox.generation() if generation is None else generation
        v = self._views.get(g)
        if v is None:
            v = self._views[g] = Views(self.sandbox.world_now(g), self.handles)
            while len(self._views) > 4:
                self._views.popitem(last=False)
        return v

    def reset(self) -> None:
        self.limiter.reset_counters()
        self.served_at.clear()
        self.sessions.reset()

    @staticmethod
    def lane(request: web.Request) -> str:
        via = request.headers.get("Via", "") or request.headers.get("X-Forwarded-For", "")
        return f"{request.remote}|{via}"

    # --- /xrpc/ ---------------------------------------------------------------------------

    async def handle_xrpc(self, request: web.Request) -> web.StreamResponse:
        sb = self.sandbox
        sb.requests += 1
        nsid = request.match_info["nsid"]
        lane = self.lane(request)
        d = self.limiter.hit(lane, "user", "xrpc")
        headers = {"ratelimit-limit": str(d.limit), "ratelimit-remaining": str(d.remaining),
                   "ratelimit-reset": str(d.reset), "ratelimit-policy": f"{d.limit};w={math.ceil(self.limiter.window_seconds)}"}
        if d.allowed:
            self.served_at.setdefault(lane, deque(maxlen=100_000)).append(self.limiter.clock())
            if not self.options["ratelimit_headers"]:  # a host that publishes no limits (as the AppView)
                headers = {}
        if not d.allowed:
            wait = max(1, math.ceil(d.reset - self.limiter.clock()))  # until the reset (an epoch second, rounded up)
            return self.answer(error(429, "Rate Limit Exceeded", "RateLimitExceeded"), {**headers, "retry-after": str(wait)})
        is_procedure = nsid in PROCEDURES
        if not is_procedure and nsid not in endpoints.QUERIES:
            return self.answer(error(501, "Method Not Implemented", "MethodNotImplemented"), headers)
        expected = "POST" if is_procedure else "GET"
        if request.method != expected and not (expected == "GET" and request.method == "HEAD"):
            return self.answer(error(400, f"Incorrect HTTP method ({request.method}) expected {expected}"), headers)
        fault = sb.faults.draw()
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.kind == "error":
            return self.answer(error(fault.status), headers)
        try:
            if is_procedure:
                status, body = 200, dumps(await self.procedure(nsid, request, headers))
            else:
                status, body = self.query(nsid, request)
        except XrpcError as exc:
            headers.update(exc.headers)
            status, body = exc.status, dumps(exc.body)
        if fault.kind == "truncate":
            body = body[: max(1, len(body) // 2)]
        if fault.kind == "drop":
            return await sb.drop(request, status, body, headers)
        return sb.respond(status, body, headers)

    def query(self, nsid: str, request: web.Request) -> tuple[int, bytes]:
        self.sessions.viewer(request.headers.get("Authorization"), nsid in endpoints.NEEDS_SESSION)
        generation = self.sandbox.generation()
        key = ("bsky", generation, nsid, request.query_string)
        cached = self.sandbox.cache.get(key)
        if cached is None:
            try:
                cached = (200, dumps(endpoints.QUERIES[nsid](self.views(generation), Query(request.query))), ())
            except XrpcError as exc:
                cached = (exc.status, dumps(exc.body), ())
            except Exception as exc:  # a handler bug still answers in XRPC's shape, uncached
                logger.error("bluesky handler failed for %s: %s: %s", nsid, type(exc).__name__, exc)
                raise error(500) from None
            self.sandbox.cache.put(key, cached)
        return cached[0], cached[1]

    async def procedure(self, nsid: str, request: web.Request, headers: dict[str, str]) -> dict[str, Any]:
        handle_of = lambda uid: self.views().handle(self.sandbox.world.user(uid))  # noqa: E731
        if nsid == "com.atproto.server.refreshSession":
            return self.sessions.refresh(request.headers.get("Authorization"), handle_of)
        try:
            body = json.loads(await request.read() or b"null")
        except ValueError:
            raise error(400, "Request body is not valid JSON") from None
        answer, limits = self.sessions.create(body, handle_of)
        headers.update(limits)
        return answer

    def answer(self, exc: XrpcError, headers: dict[str, str]) -> web.Response:
        return self.sandbox.respond(exc.status, dumps(exc.body), {**headers, **exc.headers})

    # --- test-only: /_sandbox/truth/bsky/… and /_sandbox/bsky/… ------------------------------

    async def handle_truth(self, request: web.Request) -> web.Response:
        parts = [p for p in request.match_info["tail"].split("/") if p]
        q = request.query
        v = self.views()
        try:
            if len(parts) == 2 and parts[0] in ("follows", "followers"):
                uid = v.uid_of_actor(parts[1])
                active = uid is not None and v.active(uid) is not None
                return _json({"dids": [ids.did_of(i) for i in v.follows_of(uid, parts[0])] if active else [],
                              "status": v.status(uid) if uid is not None else None})
            if len(parts) == 2 and parts[0] == "feed":
                uid = v.uid_of_actor(parts[1])
                items = []
                for tid in v.feed_ids(uid, q.get("filter", "posts_with_replies")) if uid is not None else []:
                    t = v.world.tweet(tid)
                    if t.retweeted_status_id:
                        items.append({"uri": v.post_uri(v.world.tweet(t.retweeted_status_id)), "repost": v.repost_uri(t)})
                    else:
                        items.append({"uri": v.post_uri(t), "repost": None})
                return _json({"items": items})
            if len(parts) == 2 and parts[0] == "profile":
                uid = v.uid_of_actor(parts[1])
                u = v.world.user(uid) if uid is not None else None
                if u is None or v.status(uid) is None:
                    return _json({"exists": False})
                return _json({"exists": True, "did": ids.did_of(uid), "handle": v.handle(u), "status": v.status(uid),
                              "uid": uid})
            if parts == ["did"]:
                uids = [int(x) for x in q.get("ids", "").split(",") if x]
                return _json({"dids": {str(u): ids.did_of(u) for u in uids}})
            if parts == ["post"]:
                t = v.tweet_of_uri(q["uri"])
                return _json({"exists": t is not None, "author": ids.did_of(t.author_id) if t else None,
                              "tweet_id": t.id if t else None})
            if len(parts) == 1 and parts[0] in ("quotes", "replies", "reposts", "likes"):
                t = v.tweet_of_uri(q["uri"])
                if parts[0] in ("quotes", "replies"):
                    listed = (v.world.quote_ids if parts[0] == "quotes" else v.world.reply_ids)(t.id) if t else []
                    return _json({"uris": [v.post_uri(x) for x in map(v.visible_tweet, listed) if x is not None]})
                uids = v.world.retweeter_ids(t.id) if t and parts[0] == "reposts" else \
                    [u for _, u in v.world.likes_of(t.id)] if t else []
                return _json({"dids": [ids.did_of(u) for u in uids if v.active(u) is not None]})
            if parts == ["thread"]:  # every reply under a post, depth first (conversation's truth)
                t = v.tweet_of_uri(q["uri"])
                return _json({"uris": [v.post_uri(r) for r in truth.thread_truth(v, t)] if t else [], "exists": t is not None})
            if parts == ["cascade"]:  # scrapy crawl cascade -a api=bluesky, breadth first
                return _json(truth.cascade_truth(v, [s for s in q.get("seeds", "").split(",") if s], int(q.get("depth", "1")),
                                                 q.get("include", "replies,quotes,retweets").split(","),
                                                 int(q["max_tweets"]) if q.get("max_tweets") else None))
            if len(parts) == 2 and parts[0] == "engaged":
                uid = v.uid_of_actor(parts[1])
                engaged = v.world.engaged_ids(uid) if uid is not None and v.active(uid) is not None else []
                return _json({"uris": [v.post_uri(v.world.tweet(t)) for t in engaged]})
            if parts == ["reachable"]:
                return _json({"dids": self.reachable(v, q)})
            if len(parts) == 2 and parts[0] == "network":
                return _json({"edges": self.network(v, parts[1], q.get("filter", "posts_with_replies"))})
            if parts == ["search"]:
                hits = endpoints.search_hits(v, Query(q))
                return _json({"uris": [v.post_uri_of_id(t) for t in hits]})
            if parts == ["accounts"]:
                by_handle = {a.handle: self._account_uid(a) for a in self.accounts}
                return _json([{"alias": a.alias, "handle": a.handle,
                               "did": ids.did_of(by_handle[a.handle]) if by_handle[a.handle] is not None else None}
                              for a in self.accounts])
        except XrpcError as exc:
            return _json({"error": f"bad sandbox request: {exc.body['message']}"}, 400)
        except (ValueError, KeyError) as exc:
            return _json({"error": f"bad sandbox request: {exc}"}, 400)
        return _json({"error": "unknown sandbox endpoint", "path": request.path}, 404)

    def reachable(self, v: Views, q: Any) -> list[str]:
        """The DIDs a follows/followers crawl to ``depth`` expands, in BFS order (seeds counted
        even when not active; only active accounts are listed or expanded)."""
        direction = q.get("direction", "follows")
        seeds = [v.uid_of_actor(s) for s in q.get("seeds", "").split(",") if s]
        max_users = int(q["max_users"]) if q.get("max_users") else None

        def list_of(uid: int) -> list[int] | None:
            return v.follows_of(uid, direction) if uid > 0 and v.active(uid) is not None else None

        # an unresolvable seed still counts as expanded (-k keeps it distinct and listless)
        seed_ids = [s if s is not None else -k - 1 for k, s in enumerate(seeds)]
        order = bfs_expansion(seed_ids, int(q.get("depth", "1")), "friends", max_users, list_of)
        return [ids.did_of(u) for u in order if u > 0]

    def network(self, v: Views, actor: str, filter_: str) -> list[dict[str, Any]]:
        """The user network (``scrapy export graph`` of a tweet bucket) of an author feed, from the world's
        records: a repost → the original's author; a post → the author of the post it quotes (records keep
        the reference), the author it replies to, and each active user it mentions whose ``@name`` is still
        in the post's text (a reply's leading ``@name`` is X's and is left out, as the face's text does)."""
        uid = v.uid_of_actor(actor)
        edges: dict[tuple[int, int, str], list[tuple[str, str]]] = {}
        for tid in v.feed_ids(uid, filter_) if uid is not None else []:
            t = v.world.tweet(tid)
            if t is None:
                continue
            found: set[tuple[str, int]] = set()
            if t.retweeted_status_id:
                original = v.visible_tweet(t.retweeted_status_id)
                if original is None:
                    continue  # the feed leaves the repost out
                found.add(("retweet", original.author_id))
                uri = v.repost_uri(t)
            else:
                quoted = v.world.tweet(t.quoted_status_id) if t.quoted_status_id else None
                if quoted is not None:
                    found.add(("quote", quoted.author_id))
                if t.in_reply_to_status_id and t.in_reply_to_user_id:
                    found.add(("reply", t.in_reply_to_user_id))
                text = t.text
                if t.in_reply_to_screen_name and text.startswith("@" + t.in_reply_to_screen_name + " "):
                    text = text[len(t.in_reply_to_screen_name) + 2:]
                for m in t.mentions:
                    user = v.active(m)
                    if user is not None and "@" + user.screen_name in text:
                        found.add(("mention", m))
                uri = v.post_uri(t)
            for kind, target in found:
                edges.setdefault((t.author_id, target, kind), []).append((iso(t.created_at), uri))
        return [{"source": ids.did_of(s), "target": ids.did_of(t), "kind": k, "weight": len(found),
                 "first_time": min(found)[0], "last_time": max(found)[0], "tweet_ids": sorted(u for _, u in found)}
                for (s, t, k), found in sorted(edges.items())]

    async def handle_admin(self, request: web.Request) -> web.Response:
        parts = [p for p in request.match_info["tail"].split("/") if p]
        if parts == ["counters"]:
            return _json({"lanes": self.limiter.counters(), "sessions_created": self.sessions.created,
                          "sessions_refreshed": self.sessions.refreshed,
                          "create_session_limits": self.sessions.limits[0].counters(), "served_at": {lane: list(times) for lane, times in self.served_at.items()}})
        if parts == ["tokens"]:  # what the sandbox issued, so tests can look for leaks
            return _json({"tokens": self.sessions.issued})
        return _json({"error": "unknown sandbox endpoint", "path": request.path}, 404)


def add_routes(app: web.Application, sandbox: Any) -> BlueskyFace:
    """Serve the face on ``app`` (before the sandbox's own catch-all routes)."""
    face = BlueskyFace(sandbox)
    app.router.add_route("*", "/xrpc/{nsid}", face.handle_xrpc)
    app.router.add_route("GET", "/_sandbox/truth/bsky/{tail:.*}", face.handle_truth)
    app.router.add_route("*", "/_sandbox/bsky/{tail:.*}", face.handle_admin)
    sandbox.on_reset.append(face.reset)
    return face
