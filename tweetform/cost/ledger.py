"""What a crawl has been charged: the UTC-day dedupe and the totals per job, app and kind.

A resource is billed once per (app, kind, id, UTC day). The day is the API's:
the answer's ``Date`` header (the sandbox's logical clock, the real API's clock),
else this machine's UTC date. Only today's and yesterday's ids are remembered (in
distributed mode in Redis, shared by the workers: :class:`SharedCostLedger`).
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Iterable, Mapping

import redis

from tweetform.api.pricing import PRICES_USD
from tweetform.cost import micro

logger = logging.getLogger(__name__)


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

    def billable(self, groups: Iterable[tuple[str, list[str]]]) -> list[tuple[str, list[str]]]:
        """The groups the rule bills: ids of a kind with a price."""
        return [(kind, ids) for kind, ids in groups if ids and self.prices.get(kind, 0)]

    def charge(self, job: str, app: str, day: str, groups: Iterable[tuple[str, list[str]]]) -> int:
        """Bill one page's resources (``(kind, ids)`` groups) to ``app``; micro-dollars charged."""
        billable = self.billable(groups)
        if not billable:
            return 0
        return self.count(job, app, billable, self.new_ids(app, day, billable))

    def count(self, job: str, app: str, billable: list[tuple[str, list[str]]], new: list[int]) -> int:
        """Add a page's new resources (``new[i]`` of ``billable[i]``'s kind) to the totals; micro-dollars."""
        cost = 0
        for (kind, _), n in zip(billable, new):
            if n:
                cost += n * self.prices[kind]
                self.resources[kind] = self.resources.get(kind, 0) + n
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


class _Billing:
    """A page's billing waiting for Redis's answers (:meth:`SharedCostLedger.charge_later`)."""

    __slots__ = ("job", "app", "billable", "new", "open", "charged", "done", "unsure", "beyond")

    def __init__(self, job: str, app: str, billable: list[tuple[str, list[str]]], asked: dict[int, list[str]],
                 charged: Callable[[int, int], None]) -> None:
        self.job, self.app, self.billable, self.charged = job, app, billable, charged
        self.new = [0] * len(billable)  # resources new to the day's set, by group (as Redis answers)
        self.open = asked  # group -> the ids Redis has not answered for yet
        self.done = False
        self.unsure: set[int] = set()  # groups whose call Redis may have run without its answer reaching this worker
        self.beyond = 0  # micro-dollars those groups may have cost beyond what their later answers say


class SharedCostLedger(CostLedger):
    """Distributed mode: the dedupe is shared by every worker, so a resource another worker was
    billed for today is not counted again — one script call per billed kind of a page (``lua/cost_seen.lua``)
    for the ids this worker does not know billed yet (:class:`KnownBilled`: a page whose ids it all knows
    costs none). The cost middleware's calls ride the worker's next round trip (:meth:`charge_later`).

    The ids of an app, kind and day are spread over small SETs of integers, which Redis keeps as
    intsets (4–8 bytes an id), as many as the day's ids need (``tweetform.state.redis.compact``:
    exact, grown by linear hashing); the layout and each set expire 2 days after they are made."""

    TTL = 2 * 86_400
    KNOWN_LIMIT = 200_000  # ids a worker remembers billed: 110-125 bytes each in Python (10-19 digits), ≤ 25 MB

    def __init__(self, server: Any, prices: Mapping[str, float] | None = None, known_limit: int | None = None,
                 outbox: Any = None) -> None:
        from tweetform.state.redis import connection, scripts

        super().__init__(prices)
        self.server = server
        self.outbox = outbox  # the crawler's (tweetform.state.redis.outbox): what waits there goes first in this round trip
        self._seen_script = scripts.load(server, "cost_seen")
        self.known = KnownBilled(self.KNOWN_LIMIT if known_limit is None else known_limit)
        self._known_watch = connection.ConnectionWatch(server)  # a new connection: ``known`` dropped (new_ids)
        self._migrated = False
        self._load: int | None = None  # the sets' bucket load on this server
        try:  # an older tweetform's billed ids count too (folded once per Redis, at start-up)
            self._prepare()
        except redis.RedisError:
            pass  # Redis away at start-up: done before the first page is counted instead
        self.waiting: set[_Billing] = set()  # pages charged later whose answers have not all come
        self.unsent: list[tuple[_Billing, int, tuple[str, str, str], list[str]]] = []  # calls to send again
        self._lost_said = False

    def _asked(self, app: str, day: str, groups: list[tuple[str, list[str]]]) -> list[tuple[int, tuple[str, str, str], list[str]]]:
        """(group number, (app, kind, day), ids) of the groups with ids not known billed: Redis is asked about those."""
        if self._known_watch.changed():  # a new connection: Redis may have restarted without ids it said were billed
            self.known.clear()
        return [(n, (app, kind, day), ask) for n, (kind, ids) in enumerate(groups)
                if (ask := self.known.unknown((app, kind, day), ids))]

    def _prepare(self) -> None:
        """Before the first call (at start-up unless Redis is away then): an older tweetform's ids folded in, the
        sets' bucket load read (round trips, once)."""
        from tweetform.state.redis import compact, migrate

        if not self._migrated:
            migrate.billed_ids(self.server, self.TTL)
            self._migrated = True
        if self._load is None:
            self._load = compact.set_load(self.server)

    def _call(self, key: tuple[str, str, str], ids: list[str]) -> tuple[list[Any], list[Any]]:
        """The keys and arguments of the ``cost_seen`` call for ``ids`` under ``key``."""
        from tweetform.state.redis import compact, keys

        app, kind, day = key
        layout = keys.cost_seen(app, kind, day)
        return [layout], [compact.bucket_prefix(layout), self._load, self.TTL, *(int(i) for i in ids)]

    def new_ids(self, app: str, day: str, groups: list[tuple[str, list[str]]]) -> list[int]:
        from tweetform.state.redis import scripts

        asked = self._asked(app, day, groups)
        out = [0] * len(groups)
        if not asked:
            return out
        self._prepare()

        def build(pipe: Any) -> None:
            for _, key, ids in asked:
                scripts.in_pipeline(pipe, self._seen_script, *self._call(key, ids))

        for (n, key, ids), new in zip(asked, scripts.execute(self.server, build, self.outbox)):
            out[n] = int(new)
            self.known.add(key, ids)
        return out

    # --- charged when Redis answers ------------------------------------------------------------

    def charge_later(self, job: str, app: str, day: str, groups: Iterable[tuple[str, list[str]]],
                     charged: Callable[[int, int], None]) -> None:
        """:meth:`charge` without a round trip of its own: the page's billed-ids calls wait in the outbox for the
        worker's next round trip (before its request's acknowledgement), and ``charged(cost, beyond)`` is told once
        Redis answered them all (now when there is nothing to ask: this worker knows every id billed). Redis away
        or refusing: a call is sent again with a later round trip (ids are remembered billed only once Redis
        answered); ``beyond`` (0 unless an answer was lost on the way, :meth:`_lost`) is the most the page may have
        cost beyond ``cost``; what never got an answer is told at :meth:`finish`."""
        billable = self.billable(groups)
        asked = self._asked(app, day, billable) if billable else []
        if not asked:
            charged(0, 0)
            return
        if self.unsent:  # Redis did not take them before: they go first
            again, self.unsent = self.unsent, []
            for page, n, key, ids in again:
                self._send(page, n, key, ids)
        page = _Billing(job, app, billable, {n: ids for n, _, ids in asked}, charged)
        self.waiting.add(page)
        for n, key, ids in asked:
            self._send(page, n, key, ids)

    def _send(self, page: _Billing, n: int, key: tuple[str, str, str], ids: list[str]) -> None:
        try:
            self._prepare()
        except redis.RedisError as exc:
            self.unsent.append((page, n, key, ids))
            self._say_lost(exc)
            return
        call_keys, args = self._call(key, ids)
        if self.outbox is None:  # a ledger without the crawler's outbox (a tool): its own round trip
            try:
                answer = self._seen_script(keys=call_keys, args=args)
            except redis.RedisError as exc:
                self._lost(page, n, key, ids, exc)
                return
            self._answered(page, n, key, ids, answer)
            return
        self.outbox.send(self._seen_script, call_keys, args, lambda exc: self._lost(page, n, key, ids, exc),
                         lambda answer: self._answered(page, n, key, ids, answer))

    def _answered(self, page: _Billing, n: int, key: tuple[str, str, str], ids: list[str], answer: Any) -> None:
        self.known.add(key, ids)
        self._lost_said = False
        if page.done or n not in page.open:
            return
        page.new[n] = int(answer)
        if n in page.unsure:  # its first call may have added the ids: this answer may say fewer new than were billed
            page.beyond += (len(ids) - int(answer)) * self.prices[page.billable[n][0]]
        del page.open[n]
        if not page.open:
            self._close(page, 0)

    def _close(self, page: _Billing, unbilled: int) -> None:
        """The page's answers are in (or given up): its cost counted and told."""
        page.done = True
        self.waiting.discard(page)
        cost = self.count(page.job, page.app, page.billable, page.new)
        try:  # told inside another call's round trip (scripts.execute): never its failure
            page.charged(cost, unbilled + page.beyond)
        except redis.RedisError as exc:  # the budget's settle: its reservation lapses (RESERVATION_TTL)
            logger.error("could not record what a page of job %s cost in Redis (%s)", page.job, type(exc).__name__)
        except Exception:  # a bug: said loudly, but the round trip's own answers stand (the acks, the pushes)
            logger.exception("charging a page of job %s failed", page.job)

    def _lost(self, page: _Billing, n: int, key: tuple[str, str, str], ids: list[str], exc: BaseException) -> None:
        """Redis did not answer a billed-ids call: sent again with the worker's next round trip (now if the outbox
        is closed; kept for :meth:`finish` if that fails too). A call whose answer was lost on the way (the link
        dropped, a timeout) may have run: its ids then count as billed, and the answer to the call sent again says
        none of them new; that page is told the most they may have cost beyond it (its budget settles it as spent)."""
        from tweetform.state.redis.connection import redis_away

        self._say_lost(exc)
        if redis_away(exc):
            page.unsure.add(n)
        if self.outbox is not None and self.outbox.started:
            self._send(page, n, key, ids)  # waits in the outbox: no round trip now
        else:
            self.unsent.append((page, n, key, ids))

    def _say_lost(self, exc: BaseException) -> None:
        if not self._lost_said:
            self._lost_said = True
            logger.warning("Redis did not answer which resource ids are billed (%s): the pages' cost is asked again "
                           "with a later round trip", type(exc).__name__)

    def finish(self) -> tuple[int, int]:
        """The crawl closes: the calls Redis did not take are sent once more, now; each page still without every
        answer is given up, told ``charged(cost of the answered groups, at most what the others cost)``.
        Returns (pages given up, micro-dollars they may have cost at most beyond what was counted)."""
        again, self.unsent = self.unsent, []
        for page, n, key, ids in again:
            if not page.done:
                self._send(page, n, key, ids)
        if self.outbox is not None and self.outbox.started:
            self.outbox.flush()
        pages, most = 0, 0
        for page in list(self.waiting):
            unbilled = sum(len(ids) * self.prices[page.billable[m][0]] for m, ids in page.open.items())
            pages, most = pages + 1, most + unbilled
            self._close(page, unbilled)
        self.unsent.clear()
        return pages, most
