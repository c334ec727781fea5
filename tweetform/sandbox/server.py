"""The sandbox HTTP server (aiohttp): routing, auth, rate limits, faults, caching.

API answers are pure functions of the world and the query string, so their
bodies are cached (bounded by bytes); per-request parts — authentication,
quota headers, injected faults — are applied around the cached body.

Test-only endpoints live under ``/_sandbox/`` (a prefix the API never uses) and
need no credentials: ground truth, counters, fault and credential controls.
"""

from __future__ import annotations

import asyncio
from email.utils import formatdate
import json
import logging
from collections import OrderedDict
from typing import Any, Callable

from aiohttp import web

from . import api_collections, api_v1, api_v2, bluesky, oauth_flow, stream, truth_graphs, tweet_counts, usage
from .auth import Authenticator, AuthError, Principal
from .billing import Ledger, billed_resources
from .clock import LogicalClock
from .config import SandboxConfig
from .credentials import DEMO_CREDENTIALS, load_credentials
from .errors import (
    ApiError,
    auth_failed,
    rate_limited,
    server_error,
    unsupported_authentication,
    usage_capped,
    v1_page_not_found,
    v2_not_found_path,
)
from .faults import FaultInjector
from .limits import RateLimiter
from .params import Params, is_id
from .world import World
from .world.evolution import Evolution, WorldAt

logger = logging.getLogger(__name__)
JSON_TYPE = "application/json;charset=utf-8"
V2_ROUTES = api_v2.ROUTES + api_collections.ROUTES


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


class BodyCache:
    """LRU of rendered answers (status, body, resources billed), bounded by total bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.items: OrderedDict[Any, tuple[int, bytes, tuple]] = OrderedDict()

    def get(self, key: Any) -> tuple[int, bytes, tuple] | None:
        hit = self.items.get(key)
        if hit is not None:
            self.items.move_to_end(key)
        return hit

    def put(self, key: Any, value: tuple[int, bytes, tuple]) -> None:
        if len(value[1]) > self.max_bytes // 4:
            return
        self.items[key] = value
        self.size += len(value[1])
        while self.size > self.max_bytes:
            _, (_, old, _) = self.items.popitem(last=False)
            self.size -= len(old)


class Sandbox:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.world = World(seed=config.seed, users=config.users, search_users=config.search_users)
        self.credentials = load_credentials(config.credentials) if config.credentials else list(DEMO_CREDENTIALS)
        self.auth = Authenticator(self.credentials, timestamp_window=config.timestamp_window)
        self.limiter = RateLimiter(config.window, config.limits)
        self.faults = FaultInjector(config.seed, config.faults)
        self.cache = BodyCache(config.cache_mb * 1024 * 1024)
        self.clock = LogicalClock(epoch=config.epoch)
        # the world changes with the logical clock (one generation per --evolve-every seconds)
        self.evolution = Evolution(self.world, config.evolve_every) if config.evolve_every > 0 else None
        self.ledger = Ledger(config.prices, config.credits, config.post_cap)
        self.requests = 0
        self.statuses: dict[str, int] = {}
        # alias -> "peer address|via header" -> requests (proxy tests read it)
        self.clients: dict[str, dict[str, int]] = {}
        self.on_reset: list[Callable[[], None]] = []  # other faces' counters, cleared with ours
        self.streams = stream.StreamHub(self, config.stream_keepalive)  # the filtered stream and its rules
        self.on_reset.append(self.streams.reset)

    # --- routing -----------------------------------------------------------------

    def generation(self, now: float | None = None) -> int:
        """How many steps the world has evolved by logical time ``now`` (default: now; 0: as created)."""
        if self.evolution is None:
            return 0
        return self.evolution.generation((self.clock.now() if now is None else now) - self.clock.started)

    def world_now(self, generation: int | None = None) -> World | WorldAt:
        """The world as it is in ``generation`` (default: now, by the logical clock)."""
        if self.evolution is None:
            return self.world
        return self.evolution.at(self.generation() if generation is None else generation)

    def route(self, path: str, world: World | WorldAt) -> tuple[str, str, Callable[[Params], Any]] | None:
        """(version, endpoint key, handler taking Params) for an API path, answering from ``world``."""
        if path.startswith("/1.1/") and path.endswith(".json"):
            name = path[len("/1.1/") : -len(".json")]
            if name == "application/rate_limit_status":
                return "1.1", "/application/rate_limit_status", None  # type: ignore[return-value]
            hit = api_v1.ROUTES.get(name)
            if hit is None:
                return None
            endpoint, handler = hit
            return "1.1", endpoint, lambda p: handler(world, p, path)
        if path == "/2/usage/tweets":
            return "2", "/2/usage/tweets", None  # type: ignore[return-value]
        if path in stream.PATHS:
            return "2", stream.PATHS[path], None  # type: ignore[return-value]
        if path.startswith("/2/"):
            rest = path[3:]
            for pattern, endpoint, handler in V2_ROUTES:
                m = pattern.match(rest)
                if m:
                    groups = m.groups()
                    return "2", endpoint, lambda p, g=groups, h=handler: h(world, p, *g)
        return None

    async def handle_api(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        path = request.path
        now = self.clock.now()  # one logical instant per request: its world, billing day and month
        generation = self.generation(now)
        routed = self.route(path, self.world_now(generation))
        version = "2" if path.startswith("/2/") else "1.1"
        if routed is None:
            return self.answer(v2_not_found_path() if version == "2" else v1_page_not_found())
        version, endpoint, handler = routed
        if endpoint == stream.RULES and request.method == "POST":
            endpoint = stream.RULES_POST  # its own rate limit
        try:
            # the URL exactly as the client wrote it (aiohttp's request.url normalizes paths)
            url = f"{request.scheme}://{request.host}{request.raw_path}"
            principal = self.auth.authenticate(request.method, url, request.headers, await request.read())
        except AuthError as exc:
            return self.answer(auth_failed(version, exc.status, exc.v11_code, exc.message))
        except Exception as exc:
            # A header the authenticator did not expect (e.g. oauth_timestamp of
            # non-ASCII digits, which pass str.isdigit but not int()) used to escape
            # as aiohttp's text/plain 500 page; the API calls that malformed auth.
            # One line, exception type only (no header values: they may hold secrets;
            # no traceback: stderr may be an unread pipe).
            logger.warning("malformed authentication rejected (%s)", type(exc).__name__)
            return self.answer(auth_failed(version, 400, 215, "Bad Authentication data."))
        self._note_client(principal, request)
        if version == "2" and self.limiter.limit_for(endpoint, principal.kind) is None:  # app-only or user-only endpoints
            return self.answer(unsupported_authentication(principal.kind))
        app, app_alias = self.auth.app_of(principal)
        month = self.clock.month(now)
        capped = self.ledger.blocked(app, endpoint, month)
        if capped is not None:
            # no quota spent; the headers show quota left, as the API's usage-capped 429s do
            peek = self.limiter.peek(principal.alias, principal.kind, endpoint)
            quota = {"x-rate-limit-limit": str(peek.limit), "x-rate-limit-remaining": str(peek.remaining),
                     "x-rate-limit-reset": str(peek.reset)}
            return self.answer(usage_capped(version, capped), quota)
        decision = self.limiter.hit(principal.alias, principal.kind, endpoint)
        headers = {
            "x-rate-limit-limit": str(decision.limit),
            "x-rate-limit-remaining": str(decision.remaining),
            "x-rate-limit-reset": str(decision.reset),
        }
        if not decision.allowed:
            return self.answer(rate_limited(version), headers)
        if endpoint in (stream.STREAM, stream.RULES, stream.RULES_POST):  # long-lived answers and rule state
            return await self.streams.handle(request, endpoint, app, app_alias, headers)
        fault = self.faults.draw()
        await self.faults.hold(fault)
        if fault.kind == "error":
            return self.answer(server_error(version, fault.status), headers)
        params = Params(request.query, version)
        resources: tuple = ()
        key: Any = None  # the cache key of a cached answer: its resources never change
        if handler is None:  # rate_limit_status, usage: live state, never cached, never billed
            try:
                status, body = 200, dumps(self.live_answer(endpoint, principal, app, params))
            except ApiError as exc:
                status, body = exc.status, dumps(exc.body)
        else:
            key = (generation, path, tuple(sorted(request.query.items())))
            cached = self.cache.get(key)
            if cached is None:
                try:
                    answer = handler(params)
                    cached = (200, dumps(answer), billed_resources(version, endpoint, answer))
                except ApiError as exc:
                    cached = (exc.status, dumps(exc.body), ())
                except Exception as exc:
                    # Last line of defence: a handler bug must still answer in the API's
                    # JSON shape (500 code 131), never aiohttp's text/plain traceback page,
                    # and must not be cached. One log line, no traceback (stderr may be
                    # a pipe nobody reads, which a flood of tracebacks would block).
                    logger.error("handler failed for %s: %s: %s", path, type(exc).__name__, exc)
                    return self.answer(server_error(version, 500), headers)
                self.cache.put(key, cached)
            status, body, resources = cached
        if fault.kind == "truncate":
            body = body[: max(1, len(body) // 2)]
        if fault.kind == "drop":
            return await self.drop(request, status, body, headers)
        if status == 200 and fault.kind is None:  # only an answer received whole is billed
            self.ledger.charge(app, app_alias, resources, self.clock.day(now), month, page=key)
        return self.respond(status, body, headers)

    def live_answer(self, endpoint: str, principal: Principal, app: str, params: Params) -> Any:
        if endpoint == "/2/usage/tweets":
            return usage.usage_tweets(self.ledger, self.clock, app, params)
        return api_v1.rate_limit_status(self.limiter, principal.alias, principal.kind, params)

    def _note_client(self, principal: Principal, request: web.Request) -> None:
        via = request.headers.get("Via", "") or request.headers.get("X-Forwarded-For", "")
        where = f"{request.remote}|{via}"
        seen = self.clients.setdefault(principal.alias, {})
        seen[where] = seen.get(where, 0) + 1

    def respond(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> web.Response:
        self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1
        # Date is the logical clock's: a client tells the billing day from it, as from the API's own Date
        headers = {**(headers or {}), "Date": formatdate(self.clock.now(), usegmt=True)}
        return _response(status, body, headers)

    def answer(self, error: ApiError, headers: dict[str, str] | None = None) -> web.Response:
        return self.respond(error.status, dumps(error.body), headers)

    async def drop(self, request: web.Request, status: int, body: bytes, headers: dict[str, str]) -> web.StreamResponse:
        """Send the headers and part of the body, then cut the connection."""
        resp = web.StreamResponse(status=status, headers={**headers, "content-type": JSON_TYPE})
        resp.content_length = len(body)
        await resp.prepare(request)
        await resp.write(body[: len(body) // 3])
        if request.transport is not None:
            request.transport.abort()
        return resp

    # --- oauth2/token ------------------------------------------------------------

    async def handle_token(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            token = self.auth.issue_bearer(request.headers, body)
        except AuthError as exc:
            return self.answer(auth_failed("oauth", exc.status, exc.v11_code, exc.message))
        return self.respond(200, dumps({"token_type": "bearer", "access_token": token}))

    # --- test-only endpoints -------------------------------------------------------

    async def handle_admin(self, request: web.Request) -> web.Response:
        parts = [p for p in request.path.split("/") if p][1:]
        q = request.query
        world = self.world_now()
        try:
            if parts == ["health"]:
                return _json({"ok": True, "seed": self.config.seed, "users": self.config.users, "window": self.config.window})
            if parts == ["examples"]:
                return _json(world.examples())
            if parts == ["counters"]:
                return _json(
                    {
                        "requests": self.requests,
                        "statuses": self.statuses,
                        "limits": self.limiter.counters(),
                        "faults": self.faults.injected,
                        "clients": self.clients,
                    }
                )
            if parts == ["counters", "reset"] and request.method == "POST":
                # a clean slate for the next test: counters, billing and the clock
                self.ledger.reset()
                self.ledger.credits, self.ledger.post_cap = self.config.credits, self.config.post_cap
                self.clock.set(0)
                self.limiter.reset_counters()
                self.requests = 0
                self.statuses.clear()
                self.clients.clear()
                for k in self.faults.injected:
                    self.faults.injected[k] = 0
                for reset in self.on_reset:
                    reset()
                return _json({"ok": True})
            if parts == ["clock"]:
                if request.method == "POST":
                    change = await request.json()
                    if not isinstance(change, dict) or not set(change) <= {"offset", "advance"} or not change:
                        raise ValueError('clock takes {"offset": seconds} or {"advance": seconds}')
                    if "offset" in change:
                        self.clock.set(_seconds(change["offset"]))
                    if "advance" in change:
                        self.clock.advance(_seconds(change["advance"]))
                return _json(self.clock_state())
            if parts == ["billing"]:
                return _json(self.ledger.report())
            if parts == ["billing", "reset"] and request.method == "POST":
                self.ledger.reset()
                return _json({"ok": True})
            if parts == ["billing", "limits"] and request.method == "POST":
                # raise or lift an app's credits / Post cap mid-run (a lab buying more credits)
                change = await request.json()
                if not isinstance(change, dict) or not change or not set(change) <= {"credits", "post_cap"}:
                    raise ValueError('billing limits take {"credits": USD or null, "post_cap": N or null}')
                probe = SandboxConfig()
                probe.update(change)
                for name in change:
                    setattr(self.ledger, name, getattr(probe, name))
                return _json(self.ledger.report())
            if parts == ["faults"]:
                if request.method == "POST":
                    self.faults.rates.update(await request.json())
                return _json(self.faults.rates.as_dict())
            if parts == ["credentials"]:
                return _json([{"alias": c.alias, "kind": c.kind, "revoked": self.auth.is_revoked(c.alias)} for c in self.credentials])
            if len(parts) == 2 and parts[0] in ("revoke", "restore") and request.method == "POST":
                getattr(self.auth, parts[0])(parts[1])
                return _json({"ok": True, parts[0]: parts[1]})
            if len(parts) == 3 and parts[:2] == ["truth", "conversation"]:
                # the replies search finds for conversation_id:ID (recent window, or ?archive=true)
                if not is_id(parts[2]):
                    raise ValueError(f"not a tweet id: {parts[2]!r}")
                return _json({"ids": world.search(f"conversation_id:{parts[2]}", archive=q.get("archive") in ("1", "true"))})
            if parts[:1] == ["stream"]:
                found = await self.streams.admin(parts, request)
                if found is not None:
                    return _json(found)
            if parts == ["truth", "stream"]:
                return _json(self.streams.truth(q))
            if len(parts) == 3 and parts[0] == "truth":
                return _json(self.truth(parts[1], parts[2]))
            if parts == ["truth", "counts"]:
                return _json(counts_truth(world, q))
            if parts == ["truth", "reachable"]:
                seeds = [int(s) for s in q.get("seeds", "").split(",") if s]
                max_users = int(q["max_users"]) if q.get("max_users") else None
                ids = world.reachable(seeds, int(q.get("depth", "1")), q.get("direction", "friends"), max_users)
                return _json({"ids": ids})
            if parts == ["truth", "network"]:  # the user network of a search's tweets (export graph)
                kinds = tuple(k for k in q.get("edges", ",".join(truth_graphs.KINDS)).split(",") if k)
                return _json(truth_graphs.network_truth(world, q.get("query", ""), q.get("archive") in ("1", "true"), kinds))
            if parts == ["truth", "cascade"]:  # scrapy crawl cascade's posts, users and edges, breadth first
                return _json(truth_graphs.cascade_truth(
                    world, [int(s) for s in q.get("seeds", "").split(",") if s], int(q.get("depth", "1")),
                    q.get("include", "replies,quotes,retweets").split(","),
                    int(q["max_tweets"]) if q.get("max_tweets") else None, q.get("archive") in ("1", "true")))
            if parts == ["truth", "search"]:
                return _json({"ids": world.search(q.get("query", ""), archive=q.get("archive") in ("1", "true"))})
        except (ValueError, KeyError, ApiError) as exc:
            return _json({"error": f"bad sandbox request: {exc}"}, 400)
        return _json({"error": "unknown sandbox endpoint", "path": request.path}, 404)

    def clock_state(self) -> dict[str, Any]:
        state = self.clock.as_dict()
        state["generation"] = self.generation()
        state["evolve_every"] = self.config.evolve_every
        state["world_now"] = self.world_now().now.isoformat()
        return state

    def truth(self, what: str, raw: str) -> dict[str, Any]:
        world = self.world_now()
        uid = int(raw)
        if what == "following":
            return {"ids": world.following(uid)}
        if what == "followers":
            return {"ids": world.followers(uid)}
        if what == "timeline":
            return {"ids": world.reachable_timeline(uid), "total": len(world.timeline(uid))}
        if what == "user":
            u = world.user(uid)
            if u is None:
                return {"exists": False}
            return {
                "exists": True, "id": u.id, "screen_name": u.screen_name, "protected": u.protected,
                "suspended": u.suspended, "deleted": u.deleted, "followers_count": u.followers_count,
                "friends_count": u.friends_count, "statuses_count": u.statuses_count,
            }
        if what == "deleted_tweets":
            # ids of a user's deleted tweets (a client cannot find them otherwise), so
            # tests can check the "deleted tweet" answers of the lookup endpoints
            return {"ids": world.deleted_tweet_ids(uid)}
        if what in ENGAGEMENT_TRUTH:  # collections (issue 17): ids in API order, newest first
            return {"ids": getattr(world, ENGAGEMENT_TRUTH[what])(uid)}
        if what == "tweet":
            t = world.tweet(uid)
            found = {"exists": t is not None, "deleted": bool(t and t.deleted), "author_id": t.author_id if t else None}
            if t is not None:  # what a cascade test checks: the thread and the references (a quote may also reply)
                found.update(conversation_id=t.conversation_id, in_reply_to_status_id=t.in_reply_to_status_id,
                             quoted_status_id=t.quoted_status_id)
            return found
        raise ValueError(f"unknown truth {what!r}")

    # --- app ---------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)
        if self.config.bluesky.get("enabled", True):
            bluesky.add_routes(app, self)  # /xrpc/ and its /_sandbox/…/bsky/ routes, before the catch-alls
        app.router.add_route("*", "/_sandbox/{tail:.*}", self.handle_admin)
        app.router.add_post("/oauth2/token", self.handle_token)
        oauth_flow.add_routes(app, self)  # the OAuth 1.0a PIN flow (scrapy authorize)
        app.router.add_route("*", "/{tail:.*}", self.handle_api)
        return app


#: /_sandbox/truth/<what>/<id> -> the world's method answering it
ENGAGEMENT_TRUTH = {
    "quotes": "quote_ids", "retweeters": "retweeter_ids", "likers": "liker_ids", "liked": "liked_ids",
    "mentions": "mention_ids", "replies": "reply_ids", "engaged": "engaged_ids",
    "list_members": "list_member_ids", "list_followers": "list_follower_ids", "list_tweets": "list_tweet_ids",
    "memberships": "membership_ids", "owned_lists": "owned_list_ids", "followed_lists": "followed_list_ids",
}


def counts_truth(world: World | WorldAt, q: Any) -> dict[str, Any]:
    """Every bucket of a counts request's whole period (all its pages), from search's matches."""
    archive = q.get("archive") in ("1", "true")
    granularity = q.get("granularity", "hour")
    if granularity not in tweet_counts.GRANULARITY_MS:
        raise ValueError(f"granularity must be minute, hour or day, got {granularity!r}")
    p = Params(q, "2")
    start, end = tweet_counts.window(tweet_counts.ms(world.now), archive, tweet_counts.parse_time(p, "start_time"),
                                     tweet_counts.parse_time(p, "end_time"))
    ids = tweet_counts.in_period(world.search(q.get("query", ""), archive=archive), start, end)
    buckets = tweet_counts.buckets(ids, start, end, granularity)
    return {"buckets": buckets, "total": sum(b["tweet_count"] for b in buckets)}


def _response(status: int, body: bytes, headers: dict[str, str] | None) -> web.Response:
    resp = web.Response(status=status, body=body, headers=headers)
    resp.headers["content-type"] = JSON_TYPE
    return resp


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or abs(value) > 1e10:
        raise ValueError(f"clock seconds must be a number, got {value!r}")
    return float(value)


def _json(obj: Any, status: int = 200) -> web.Response:
    return _response(status, dumps(obj), None)


async def serve(config: SandboxConfig, announce: Callable[[str], None] = print) -> None:
    """Run until cancelled; announce the URL once listening."""
    sandbox = Sandbox(config)
    runner = web.AppRunner(sandbox.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    port = runner.addresses[0][1]
    announce(f"tweetform sandbox listening on http://{config.host}:{port}")
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def run(config: SandboxConfig, then: Any = None) -> None:
    """Blocking entry point used by ``scrapy sandbox`` and ``python -m tweetform.sandbox``;
    ``then(base_url)`` runs once it listens (``scrapy sandbox`` prints its shell lines)."""
    import signal

    def announce(line: str) -> None:
        print(line, flush=True)
        if then is not None:
            then(line.rsplit(" ", 1)[-1])

    loop = asyncio.new_event_loop()
    task = loop.create_task(serve(config, announce))
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        loop.run_until_complete(task)
    except asyncio.CancelledError:
        pass
    finally:
        loop.close()
