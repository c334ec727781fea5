"""The filtered stream: ``/2/tweets/search/stream`` and its ``/rules``.

* **Rules** belong to an app (its consumer key, as billing): ``GET …/rules``
  lists them, ``POST …/rules`` adds (``{"add": [{"value", "tag"}]}``) or deletes
  (``{"delete": {"ids": […]}}`` or ``{"values": […]}``), ``?dry_run=true`` only
  validates. A rule is a query of the search language (the same parser and
  evaluator as search); an invalid one, a duplicate, one past 1,024 characters
  or past the 1,000-rule cap is refused in the API's shape (200 with
  ``errors`` and ``meta.summary``), and then none of the request's rules is
  created, as the API does.
* **The stream** (app-only bearer) delivers the evolving world's new posts as
  the logical clock passes their ``created_at`` (one logical second of the
  clock is one second of the world after its creation), each matching at least
  one rule, oldest first, one JSON object per line
  (``{"data", "includes", "matching_rules"}``, ``\\r\\n``-terminated) and a
  ``\\r\\n`` keep-alive after ``--stream-keepalive`` seconds (20) of silence.
  ``backfill_minutes`` (0–5) first sends what matched in the minutes before
  the connection. One connection per app: a second gets the API's 429
  ``TooManyConnections``. No rules: 409. Each post delivered whole is billed as
  a Post read (and its ``includes`` by the billing rule).
* **Test controls** (no credentials): ``GET /_sandbox/stream`` (the world's
  creation time, open connections — ``connected_at``, ``delivered``,
  ``through``: every post due before then was sent — their history, connects
  and posts delivered per app), ``POST /_sandbox/stream/faults`` with
  ``{"plan": ["drop", "stall", …], "every": N, "stall_seconds": S}``: after
  every N posts delivered the next fault of the plan happens — ``drop`` cuts
  the connection in the middle of a post, ``stall`` sends nothing (not even
  keep-alives) for S seconds. ``GET /_sandbox/truth/stream?app=ALIAS&since=T&until=T``:
  the posts created in ``(since, until]`` (logical Unix seconds) that match the
  app's rules now, with the ids of the rules each matches.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import paging, render
from .api_v2 import _tweet_fields
from .errors import PROBLEMS, ApiError, v2_invalid, v2_problem
from .params import Params, is_id
from .world.common import _NOW_MS, TWITTER_EPOCH_MS
from .world.query import _Evaluator, _parse

if TYPE_CHECKING:
    from .server import Sandbox

STREAM = "/2/tweets/search/stream"
RULES = "/2/tweets/search/stream/rules"
RULES_POST = "/2/tweets/search/stream/rules:post"  # the POST's own rate limit (100 per 15 min)
PATHS = {STREAM: STREAM, RULES: RULES}
MAX_RULES = 1000  # pay-per-use
MAX_RULE_LENGTH = 1024
MAX_BACKFILL_MINUTES = 5
TICK = 0.02  # seconds between looks at the clock while connected


@dataclass
class Rule:
    id: str
    value: str
    tag: str | None

    def as_json(self) -> dict[str, str]:
        return {"id": self.id, "value": self.value, **({"tag": self.tag} if self.tag is not None else {})}


@dataclass
class StreamFaults:
    """Faults of the stream, in order: after every ``every`` posts delivered the next one happens."""

    plan: list[str] = field(default_factory=list)
    every: int = 5
    stall_seconds: float = 2.0
    since_last: int = 0  # posts delivered since the last fault
    injected: dict[str, int] = field(default_factory=lambda: {"drop": 0, "stall": 0})

    def update(self, values: Any) -> None:
        if not isinstance(values, dict) or not set(values) <= {"plan", "every", "stall_seconds"}:
            raise ValueError('stream faults take {"plan": ["drop"|"stall", …], "every": N, "stall_seconds": S}')
        plan = values.get("plan", self.plan)
        if not isinstance(plan, list) or any(p not in ("drop", "stall") for p in plan):
            raise ValueError("the plan is a list of 'drop' and 'stall'")
        every, stall = int(values.get("every", self.every)), float(values.get("stall_seconds", self.stall_seconds))
        if every < 1 or not 0 <= stall <= 600:
            raise ValueError("every must be at least 1 and stall_seconds within 0..600")
        self.plan, self.every, self.stall_seconds, self.since_last = list(plan), every, stall, 0

    def next(self) -> str | None:
        """The fault due before the next post, if any."""
        if self.plan and self.since_last >= self.every:
            self.since_last = 0
            kind = self.plan.pop(0)
            self.injected[kind] += 1
            return kind
        return None

    def as_dict(self) -> dict[str, Any]:
        return {"plan": self.plan, "every": self.every, "stall_seconds": self.stall_seconds, "injected": self.injected}


@dataclass
class Connection:
    app_alias: str
    request: web.Request
    connected_at: float  # logical Unix seconds
    delivered: int = 0
    through: float = 0.0  # logical Unix seconds: every matching post created before then has been sent
    ended_at: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {"app": self.app_alias, "connected_at": self.connected_at, "delivered": self.delivered,
                "through": self.through, "ended_at": self.ended_at}

    def gone(self) -> bool:
        transport = self.request.transport
        return transport is None or transport.is_closing()


class StreamHub:
    """Rules per app, the one connection per app, and what the stream delivers."""

    def __init__(self, sandbox: Sandbox, keepalive: float = 20.0) -> None:
        self.sandbox = sandbox
        self.keepalive = keepalive
        self.rules: dict[str, dict[str, Rule]] = {}  # app -> rule id -> rule (in creation order)
        self.connections: dict[str, Connection] = {}  # app -> its connection
        self.connects: dict[str, int] = {}  # app alias -> connections accepted
        self.history: list[Connection] = []  # every connection accepted (the last 100)
        self.delivered: dict[str, int] = {}  # app alias -> posts delivered whole
        self.faults = StreamFaults()
        self._ids = 0
        self._warm: asyncio.Future | None = None
        self._hits: OrderedDict[tuple[int, str], frozenset[int]] = OrderedDict()  # (generation, rule) -> index lines

    # --- time: logical seconds since the world's creation <-> the world's milliseconds ------------------
    def world_ms(self, logical: float) -> int:
        return _NOW_MS + int((logical - self.sandbox.clock.started) * 1000)

    def sent(self) -> str:
        return datetime.fromtimestamp(self.sandbox.clock.now(), timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    # --- matching ---------------------------------------------------------------------------------------
    def matches(self, rules: list[Rule], lo_ms: int, hi_ms: int) -> list[tuple[int, list[Rule]]]:
        """New posts created in ``(lo_ms, hi_ms]`` (world time) matching any rule, oldest first, with their rules."""
        evolution = self.sandbox.evolution
        if evolution is None or not rules or hi_ms <= max(lo_ms, _NOW_MS):
            return []
        step = evolution.step_ms
        first = max(1, (lo_ms - _NOW_MS) // step + 1)  # generation k's posts are dated inside ((k-1)·step, k·step)
        last = (hi_ms - _NOW_MS + step - 1) // step
        found: dict[int, list[Rule]] = {}
        for k in range(first, last + 1):
            idx = evolution._gen_index(k)
            for rule in rules:
                for pos in self._lines(k, rule.value, idx):
                    tid = idx.tids[pos]
                    if lo_ms < (tid >> 22) + TWITTER_EPOCH_MS <= hi_ms:
                        found.setdefault(tid, []).append(rule)
        return sorted(found.items())

    def _lines(self, k: int, value: str, idx: Any) -> frozenset[int]:
        key = (k, value)
        hit = self._hits.get(key)
        if hit is None:
            hit = self._hits[key] = frozenset(_Evaluator(self.sandbox.world, idx).eval(_parse(value)))
            if len(self._hits) > 4096:
                self._hits.popitem(last=False)
        return hit

    def render(self, tid: int, rules: list[Rule], p: Params) -> dict[str, Any]:
        evolution = self.sandbox.evolution
        assert evolution is not None
        t_ms = (tid >> 22) + TWITTER_EPOCH_MS
        u, k, _, j = evolution.decode(tid, (t_ms - _NOW_MS) // evolution.step_ms + 1)  # type: ignore[misc]
        tweet = evolution.new_tweet(tid, u, k, j)
        world = self.sandbox.world_now()
        user_fields, tweet_fields, expansions = _tweet_fields(p)
        out: dict[str, Any] = {"data": render.v2_tweet(world, tweet, tweet_fields)}
        includes = render.v2_tweet_includes(world, [tweet], expansions, user_fields, tweet_fields)
        if includes:
            out["includes"] = includes
        out["matching_rules"] = [{"id": r.id, **({"tag": r.tag} if r.tag is not None else {})} for r in rules]
        return out

    # --- the API ------------------------------------------------------------------------------------------
    async def handle(self, request: web.Request, endpoint: str, app: str, app_alias: str,
                     headers: dict[str, str]) -> web.StreamResponse:
        try:
            if endpoint == STREAM:
                return await self.stream(request, app, app_alias, headers)
            if request.method == "POST":
                body = await self.change_rules(request, app)
            else:
                body = self.list_rules(Params(request.query, "2"), app)
        except ApiError as exc:
            return self.sandbox.answer(exc, headers)
        return self.sandbox.respond(200, _dumps(body), headers)

    def list_rules(self, p: Params, app: str) -> dict[str, Any]:
        rules = list(self.rules.get(app, {}).values())
        ids = p.csv("ids", 1000, check=is_id)
        if ids:
            rules = [r for r in rules if r.id in set(ids)]
        size = p.int("max_results", 1000, 1, 1000) or 1000
        token = p.get("pagination_token")
        offset = paging.decode_token(token, ("rules", app)) if token else 0
        if offset is None:
            raise v2_invalid(f"The `pagination_token` query parameter value [{token}] is not valid", {"pagination_token": [token or ""]})
        chunk = rules[offset : offset + size]
        meta: dict[str, Any] = {"sent": self.sent(), "result_count": len(chunk)}
        if offset + size < len(rules):
            meta["next_token"] = paging.encode_token(offset + size, ("rules", app))
        return {"data": [r.as_json() for r in chunk], "meta": meta} if chunk else {"meta": meta}

    async def change_rules(self, request: web.Request, app: str) -> dict[str, Any]:
        try:
            change = json.loads(await request.read())
        except ValueError:
            change = None
        if not isinstance(change, dict) or len(set(change) & {"add", "delete"}) != 1 or not set(change) <= {"add", "delete"}:
            raise v2_invalid("The request body must be a JSON object with either add or delete", {"body": []})
        dry_run = Params(request.query, "2").bool("dry_run")
        if "add" in change:
            return self.add_rules(change["add"], app, dry_run)
        return self.delete_rules(change["delete"], app, dry_run)

    def add_rules(self, wanted: Any, app: str, dry_run: bool) -> dict[str, Any]:
        if not isinstance(wanted, list) or not wanted or not all(isinstance(r, dict) for r in wanted):
            raise v2_invalid("add must be a non-empty list of rules, each {\"value\": …, \"tag\": …}", {"add": []})
        current = self.rules.setdefault(app, {})
        by_value = {r.value: r for r in current.values()}
        errors: list[dict[str, Any]] = []
        valid: list[Rule] = []
        for entry in wanted:
            value, tag = entry.get("value"), entry.get("tag")
            if not isinstance(value, str) or (tag is not None and not isinstance(tag, str)):
                raise v2_invalid("each rule needs a string value (and an optional string tag)", {"add": []})
            error = self._rule_error(value, by_value)
            if error is not None:
                errors.append(error)
                continue
            self._ids += 1
            rule = Rule(str(((int(self.sandbox.clock.now() * 1000) - TWITTER_EPOCH_MS) << 22) | (self._ids & 0x3FFFFF)), value, tag)
            valid.append(rule)
            by_value[value] = rule
        if len(current) + len(valid) > MAX_RULES:
            errors.append({"title": "RulesCapExceeded", "type": PROBLEMS + "rule-cap",
                           "detail": f"Rule creation would exceed your rules cap of {MAX_RULES} rules."})
        created = not errors and not dry_run
        if created:
            self.warm()  # a stream will follow
            for rule in valid:
                current[rule.id] = rule
        summary = {"created": len(valid) if created else 0, "not_created": 0 if created else len(wanted),
                   "valid": len(valid), "invalid": len(wanted) - len(valid)}
        out: dict[str, Any] = {}
        if not errors and valid:
            out["data"] = [r.as_json() for r in valid]
        if errors:
            out["errors"] = errors
        out["meta"] = {"sent": self.sent(), "summary": summary}
        return out

    def _rule_error(self, value: str, by_value: dict[str, Rule]) -> dict[str, Any] | None:
        def invalid(detail: str) -> dict[str, Any]:
            return {"value": value, "details": [detail], "title": "UnprocessableEntity", "type": PROBLEMS + "invalid-rules"}

        if not value.strip():
            return invalid("Rules must contain at least one term")
        if len(value) > MAX_RULE_LENGTH:
            return invalid(f"Rule length is {len(value)} characters; rules can be at most {MAX_RULE_LENGTH} characters long")
        try:
            _parse(value)
        except ValueError as exc:
            return invalid(str(exc))
        if value in by_value:
            return {"value": value, "id": by_value[value].id, "title": "DuplicateRule", "type": PROBLEMS + "duplicate-rules"}
        return None

    def delete_rules(self, wanted: Any, app: str, dry_run: bool) -> dict[str, Any]:
        if not isinstance(wanted, dict) or len(wanted) != 1 or not set(wanted) <= {"ids", "values"} \
                or not isinstance(next(iter(wanted.values())), list) or not next(iter(wanted.values())):
            raise v2_invalid("delete must be {\"ids\": [...]} or {\"values\": [...]}", {"delete": []})
        current = self.rules.setdefault(app, {})
        by_value = {r.value: r.id for r in current.values()}
        gone, errors = [], []
        for raw in next(iter(wanted.values())):
            rid = str(raw) if "ids" in wanted else by_value.get(str(raw))
            if rid is None or rid not in current:
                errors.append({"value": str(raw), "title": "Not Found Error", "detail": f"Could not find a rule with {'id' if 'ids' in wanted else 'value'} [{raw}].",
                               "type": PROBLEMS + "resource-not-found"})
            elif rid not in gone:
                gone.append(rid)
        if not dry_run:
            for rid in gone:
                del current[rid]
        out: dict[str, Any] = {"meta": {"sent": self.sent(), "summary": {"deleted": len(gone), "not_deleted": len(errors)}}}
        if errors:
            out["errors"] = errors
        return out

    async def stream(self, request: web.Request, app: str, app_alias: str, headers: dict[str, str]) -> web.StreamResponse:
        p = Params(request.query, "2")
        backfill = p.int("backfill_minutes", 0, 0, MAX_BACKFILL_MINUTES) or 0
        _tweet_fields(p)  # bad field names answer 400 before connecting
        held = self.connections.get(app)
        if held is not None and not held.gone():
            raise v2_problem(429, "ConnectionException", "This stream is currently at the maximum allowed connection limit.",
                             "streaming-connection", connection_issue="TooManyConnections")
        if not self.rules.get(app):
            raise v2_problem(409, "ConnectionException", "This stream has no rules: add rules (POST /2/tweets/search/stream/rules) "
                             "before connecting.", "streaming-connection", connection_issue="NoRules")
        await self.warm()
        held = self.connections.get(app)
        if held is not None and not held.gone():  # another connection came in meanwhile
            raise v2_problem(429, "ConnectionException", "This stream is currently at the maximum allowed connection limit.",
                             "streaming-connection", connection_issue="TooManyConnections")
        now = self.sandbox.clock.now()
        conn = self.connections[app] = Connection(app_alias, request, now, through=now - backfill * 60)
        self.connects[app_alias] = self.connects.get(app_alias, 0) + 1
        self.history = [*self.history[-99:], conn]
        resp = web.StreamResponse(status=200, headers={**headers, "content-type": "application/json; charset=utf-8",
                                                       "Date": formatdate(now, usegmt=True)})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        cursor = max(_NOW_MS, self.world_ms(now - backfill * 60))
        quiet_since = time.monotonic()
        try:
            while not conn.gone():
                now = self.sandbox.clock.now()
                hi = self.world_ms(now)
                for tid, rules in self.matches(list(self.rules.get(app, {}).values()), cursor, hi):
                    fault = self.faults.next()
                    answer = self.render(tid, rules, p)
                    line = _dumps(answer) + b"\r\n"
                    if fault == "drop":
                        await resp.write(line[: len(line) // 2])
                        if request.transport is not None:
                            request.transport.abort()
                        return resp
                    if fault == "stall":
                        await self._stall(conn)
                        if conn.gone():
                            return resp
                    await resp.write(line)
                    self._bill(app, app_alias, answer)
                    conn.delivered += 1
                    self.faults.since_last += 1
                    quiet_since = time.monotonic()
                    cursor = (tid >> 22) + TWITTER_EPOCH_MS
                cursor = max(cursor, hi)
                conn.through = now
                if time.monotonic() - quiet_since >= self.keepalive:
                    await resp.write(b"\r\n")
                    quiet_since = time.monotonic()
                await asyncio.sleep(TICK)
        except (ConnectionError, RuntimeError):
            pass  # the client went away (aiohttp raises ConnectionResetError, or RuntimeError on a closed transport)
        finally:
            conn.ended_at = self.sandbox.clock.now()
            if self.connections.get(app) is conn:
                del self.connections[app]
        return resp

    def warm(self) -> asyncio.Future:
        """Build the world's lazy indexes a post's rendering needs (its engagement counts: seconds for a large
        world) in a thread, once: started when rules are added, awaited before a stream starts, so the first
        posts never hold up keep-alives."""
        if self._warm is None:
            self._warm = asyncio.get_running_loop().run_in_executor(None, self.sandbox.world._engagement)
        return self._warm

    async def _stall(self, conn: Connection) -> None:
        """Send nothing for ``stall_seconds`` (returns early once the client has gone)."""
        until = time.monotonic() + self.faults.stall_seconds
        while time.monotonic() < until and not conn.gone():
            await asyncio.sleep(TICK)

    def _bill(self, app: str, app_alias: str, answer: dict[str, Any]) -> None:
        from .billing import billed_resources

        sandbox = self.sandbox
        now = sandbox.clock.now()
        sandbox.ledger.charge(app, app_alias, billed_resources("2", STREAM, answer), sandbox.clock.day(now), sandbox.clock.month(now))
        self.delivered[app_alias] = self.delivered.get(app_alias, 0) + 1

    # --- test controls ---------------------------------------------------------------------------------
    def app_named(self, alias: str) -> str:
        for cred in self.sandbox.credentials:
            if cred.alias == alias:
                return cred.app_key if getattr(cred, "app_key", None) else "bearer:" + alias
        raise ValueError(f"no credential {alias!r}")

    def truth(self, q: Any) -> dict[str, Any]:
        app = self.app_named(q.get("app", ""))
        since, until = float(q["since"]), float(q["until"])
        rules = list(self.rules.get(app, {}).values())
        found = self.matches(rules, self.world_ms(since), self.world_ms(until))
        return {"ids": [str(tid) for tid, _ in found], "matching_rules": {str(tid): [r.id for r in rs] for tid, rs in found}}

    def status(self) -> dict[str, Any]:
        return {
            "started": self.sandbox.clock.started,  # the world's creation (logical Unix seconds): its new posts come after
            "connections": {c.app_alias: c.as_json() for c in self.connections.values() if not c.gone()},
            "history": [c.as_json() for c in self.history],
            "connects": dict(self.connects),
            "delivered": dict(self.delivered),
            "faults": self.faults.as_dict(),
            "keepalive": self.keepalive,
            "ready": self._warm is not None and self._warm.done(),  # the world's indexes are built: posts render at once
        }

    async def admin(self, parts: list[str], request: web.Request) -> Any:
        """``/_sandbox/stream`` (status), ``/_sandbox/stream/faults`` (GET, POST)."""
        if parts == ["stream", "faults"]:
            if request.method == "POST":
                self.faults.update(await request.json())
            return self.faults.as_dict()
        if parts == ["stream"]:
            return self.status()
        return None

    def reset(self) -> None:
        """``/_sandbox/counters/reset``: rules, counts and faults, and open streams are cut (each test's clean slate)."""
        for conn in list(self.connections.values()):
            if conn.request.transport is not None:
                conn.request.transport.abort()
        self.rules.clear()
        self.connects.clear()
        self.history.clear()
        self.delivered.clear()
        self.faults = StreamFaults()
        self._hits.clear()


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
