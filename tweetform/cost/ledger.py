"""What a crawl has been charged: the UTC-day dedupe and the totals per job, app and kind.

A resource is billed once per (app, kind, id, UTC day). The day is the API's:
the answer's ``Date`` header (the sandbox's logical clock, the real API's clock),
else this machine's UTC date. Only today's and yesterday's ids are remembered (in
distributed mode in Redis, shared by the workers: :class:`SharedCostLedger`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Iterable, Mapping

import redis

from tweetform.api.pricing import PRICES_USD
from tweetform.cost import micro


class DayOf:
    """The UTC day of an HTTP ``Date`` header, with the last answer cached (one per second at most)."""

    def __init__(self) -> None:
        self._last: tuple[bytes, str] = (b"", "")

    def __call__(self, header: bytes | None) -> str:
        if header:
            if header == self._last[0]:
                return self._last[1]
            try:
                day = parsedate_to_datetime(header.decode("latin-1")).astimezone(timezone.utc).strftime("%Y-%m-%d")
            except (TypeError, ValueError):
                day = ""
            if day:
                self._last = (header, day)
                return day
        return datetime.now(timezone.utc).strftime("%Y-%m-%d")


class CostLedger:
    """Charges pages by the billing rule; totals in micro-dollars."""

    def __init__(self, prices: Mapping[str, float] | None = None) -> None:
        self.prices = {kind: micro(p) for kind, p in (prices or PRICES_USD).items()}
        self.seen: dict[tuple[str, str, str], set[str]] = {}
        self.days: list[str] = []
        self.by_job: dict[str, int] = {}
        self.by_app: dict[str, int] = {}
        self.resources: dict[str, int] = {}  # kind -> resources billed
        self.total = 0

    def _seen(self, app: str, kind: str, day: str) -> set[str]:
        key = (app, kind, day)
        found = self.seen.get(key)
        if found is None:
            if day not in self.days:
                self.days.append(day)
                if len(self.days) > 2:  # forget ids of days before yesterday
                    old = self.days.pop(0)
                    for k in [k for k in self.seen if k[2] == old]:
                        del self.seen[k]
            found = self.seen[key] = set()
        return found

    def new_ids(self, app: str, day: str, groups: list[tuple[str, list[str]]]) -> list[int]:
        """How many ids of each group were not billed yet to ``app`` on ``day`` (and are now)."""
        out = []
        for kind, ids in groups:
            seen = self._seen(app, kind, day)
            before = len(seen)
            seen.update(ids)
            out.append(len(seen) - before)
        return out

    def charge(self, job: str, app: str, day: str, groups: Iterable[tuple[str, list[str]]]) -> int:
        """Bill one page's resources (``(kind, ids)`` groups) to ``app``; micro-dollars charged."""
        billable = [(kind, ids) for kind, ids in groups if ids and self.prices.get(kind, 0)]
        if not billable:
            return 0
        cost = 0
        for (kind, _), new in zip(billable, self.new_ids(app, day, billable)):
            if new:
                cost += new * self.prices[kind]
                self.resources[kind] = self.resources.get(kind, 0) + new
        if cost:
            self.by_job[job] = self.by_job.get(job, 0) + cost
            self.by_app[app] = self.by_app.get(app, 0) + cost
            self.total += cost
        return cost


class KnownBilled:
    """Ids this worker heard from Redis are billed to an (app, kind, UTC day): skipped without asking again.

    Exact: a day's shared set only grows (its keys expire 2 days after they are made, past that day), so an id
    Redis answered for stays billed for the rest of that day; ids are remembered only once Redis has answered
    for them; another day is another key, so a new day starts with nothing known; a new connection to Redis (a
    restart may have lost the latest ids: SharedCostLedger.new_ids) forgets everything. Bounded: at most ``limit`` ids,
    in two generations; when the recent one holds ``limit / 2`` it becomes the older one and the older is
    forgotten (ids met in the older are kept as recent), so an id forgotten costs one lookup more, never a charge.
    A limit of 0 (or 1) remembers nothing.
    """

    def __init__(self, limit: int) -> None:
        self.half = limit // 2
        self.recent: dict[tuple[str, str, str], set[str]] = {}
        self.older: dict[tuple[str, str, str], set[str]] = {}
        self.size = 0  # ids in ``recent``

    def unknown(self, key: tuple[str, str, str], ids: list[str]) -> list[str]:
        """The ids not known to be billed under ``key`` (the ones Redis must be asked about)."""
        recent = self.recent.get(key)
        ask = [i for i in ids if i not in recent] if recent else ids
        older = self.older.get(key)
        if older and ask:
            kept = [i for i in ask if i in older]
            if kept:
                ask = [i for i in ask if i not in older]
                self.add(key, kept)
        return ask

    def clear(self) -> None:
        """Nothing known any more."""
        self.recent, self.older, self.size = {}, {}, 0

    def add(self, key: tuple[str, str, str], ids: list[str]) -> None:
        """``ids`` are billed under ``key``: Redis said so (they were new and are now, or were already)."""
        if not self.half:
            return
        known = self.recent.get(key)
        if known is None:
            known = self.recent[key] = set()
        before = len(known)
        known.update(ids)
        self.size += len(known) - before
        if self.size >= self.half:
            self.older, self.recent, self.size = self.recent, {}, 0


class SharedCostLedger(CostLedger):
    """Distributed mode: the dedupe is shared by every worker, so a resource another worker was
    billed for today is not counted again — one round trip per page (``lua/cost_seen.lua``) for the ids
    this worker does not know billed yet (:class:`KnownBilled`: a page whose ids it all knows costs none).

    The ids of an app, kind and day are spread over small SETs of integers, which Redis keeps as
    intsets (4–8 bytes an id), as many as the day's ids need (``tweetform.state.redis.compact``:
    exact, grown by linear hashing); the layout and each set expire 2 days after they are made."""

    TTL = 2 * 86_400
    KNOWN_LIMIT = 200_000  # ids a worker remembers billed: 110-125 bytes each in Python (10-19 digits), ≤ 25 MB

    def __init__(self, server: Any, prices: Mapping[str, float] | None = None, known_limit: int | None = None,
                 outbox: Any = None) -> None:
        from tweetform.state.redis import connection, migrate, scripts

        super().__init__(prices)
        self.server = server
        self.outbox = outbox  # the crawler's (tweetform.state.redis.outbox): what waits there goes first in this round trip
        self._seen_script = scripts.load(server, "cost_seen")
        self.known = KnownBilled(self.KNOWN_LIMIT if known_limit is None else known_limit)
        self._known_watch = connection.ConnectionWatch(server)  # a new connection: ``known`` dropped (new_ids)
        self._migrated = False
        try:  # an older tweetform's billed ids count too (folded once per Redis, at start-up)
            migrate.billed_ids(server, self.TTL)
            self._migrated = True
        except redis.RedisError:
            pass  # Redis away at start-up: folded before the first page is counted instead
        self._load: int | None = None  # the sets' bucket load on this server (read at the first page)

    def new_ids(self, app: str, day: str, groups: list[tuple[str, list[str]]]) -> list[int]:
        from tweetform.state.redis import compact, keys, migrate, scripts

        if self._known_watch.changed():  # a new connection: Redis may have restarted without ids it said were billed
            self.known.clear()
        asked = [(n, (app, kind, day), ask) for n, (kind, ids) in enumerate(groups)
                 if (ask := self.known.unknown((app, kind, day), ids))]
        out = [0] * len(groups)
        if not asked:
            return out
        if not self._migrated:
            migrate.billed_ids(self.server, self.TTL)
            self._migrated = True
        if self._load is None:
            self._load = compact.set_load(self.server)

        def build(pipe: Any) -> None:
            for _, (_, kind, _), ids in asked:
                layout = keys.cost_seen(app, kind, day)
                scripts.in_pipeline(pipe, self._seen_script, [layout],
                                    [compact.bucket_prefix(layout), self._load, self.TTL, *(int(i) for i in ids)])

        for (n, key, ids), new in zip(asked, scripts.execute(self.server, build, self.outbox)):
            out[n] = int(new)
            self.known.add(key, ids)
        return out
