"""A job's budget shared by every worker: one Redis hash per job, reserved atomically in Lua.

``tweetform:job:<id>:budget`` holds ``budget`` and ``spent`` (and ``app:<app>``,
spent per app) in integer micro-dollars; ``tweetform:job:<id>:budget:reserved``
the open reservations (a ZSET of ``<token>|<amount>`` by expiry time, on Redis's clock: the
scripts read ``TIME``, so a host whose own clock is off neither drops others' live reservations nor
keeps dead ones).
``lua/budget_reserve.lua`` reserves a page's maximum cost only if
``spent + reserved + cost <= budget`` (the budget is set from the job's arguments
the first time); ``lua/budget_settle.lua`` turns a reservation into what the page
cost. ``scrapy admin budget JOB +USD`` raises ``budget``. A worker that is killed
leaves its open reservations behind: they stop counting after
``RESERVATION_TTL`` seconds, longer than any request takes to be answered.
"""

from __future__ import annotations

import time
from typing import Any

from scrapy.crawler import Crawler

from tweetform.cost import micro
from tweetform.state.base import BUDGET as EXHAUSTED  # the job state "budget_exhausted"
from tweetform.state.redis import connection, keys, scripts


RECORD_EVERY = 1.0  # seconds: what pages of jobs without a budget cost is sent this often
RESERVATION_TTL = 600.0  # seconds: a reservation a killed worker never settled stops counting after this


def _token(token: Any) -> str:
    return ":".join(map(str, token)) if isinstance(token, (tuple, list)) else str(token)


class RedisBudget:
    def __init__(self, server: Any, store: Any = None) -> None:
        self.server = server
        self.store = store
        self._reserve = scripts.load(server, "budget_reserve")
        self._settle = scripts.load(server, "budget_settle")
        self.last: dict[str, tuple[int, int, int]] = {}  # job -> (budget, spent, reserved) last seen
        self.pending: dict[str, tuple[int, dict[str, int]]] = {}  # job -> spent not yet sent (jobs without a budget)
        self.flushed_at = time.monotonic()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "RedisBudget":
        from tweetform import state

        return cls(connection.for_crawler(crawler), state.job_store(crawler))

    def reserve(self, job: str, budget: int, amount: int, token: Any = None) -> bool:
        member = f"{_token(token)}|{amount}"
        ok, total, spent, reserved = (int(x) for x in self._reserve(
            keys=[keys.budget(job), keys.budget_reserved(job)], args=[budget, amount, member, RESERVATION_TTL]))
        self.last[job] = (total, spent, reserved)
        return bool(ok)

    def _seen(self, job: str) -> tuple[int, int, int]:
        if job not in self.last:
            money = spend_of(self.server, job)
            self.last[job] = (micro(money["budget_usd"] or 0), micro(money["spent_usd"]), micro(money["reserved_usd"]))
        return self.last[job]

    def left(self, job: str, budget: int) -> int:
        total, spent, reserved = self._seen(job)
        return (total or budget) - spent - reserved

    def unspent(self, job: str, budget: int) -> int:
        total, spent, _ = self._seen(job)
        return (total or budget) - spent

    def settle(self, job: str, reserved: int, actual: int, apps: dict[str, int] | None = None, token: Any = None) -> None:
        by_app = [x for app, n in (apps or {}).items() if n for x in (app, n)]
        member = f"{_token(token)}|{reserved}" if token is not None else ""
        self.last[job] = tuple(int(x) for x in self._settle(  # type: ignore[assignment]
            keys=[keys.budget(job), keys.budget_reserved(job)], args=[member, actual, *by_app]))

    def record(self, job: str, actual: int, apps: dict[str, int] | None = None) -> None:
        """What a page of a job without a budget cost: added up here, sent at most once a second
        (nothing waits on it but ``scrapy status``), so such pages cost no round trip of their own."""
        total, by_app = self.pending.get(job, (0, {}))
        for app, n in (apps or {}).items():
            by_app[app] = by_app.get(app, 0) + n
        self.pending[job] = (total + actual, by_app)
        if time.monotonic() - self.flushed_at >= RECORD_EVERY:
            self.flush()

    def flush(self) -> None:
        self.flushed_at = time.monotonic()
        if not self.pending:
            return
        def build(pipe: Any) -> None:  # by digest: redis-py's script(client=pipe) adds a SCRIPT EXISTS round trip
            for job, (actual, by_app) in self.pending.items():
                args = ["", actual, *[x for app, n in by_app.items() if n for x in (app, n)]]
                scripts.in_pipeline(pipe, self._settle, [keys.budget(job), keys.budget_reserved(job)], args)

        scripts.execute(self.server, build)
        self.pending.clear()

    def close(self) -> None:
        self.flush()

    def total_spent(self, job: str) -> int:
        return int(self.server.hget(keys.budget(job), "spent") or 0)

    def exhausted(self, job: str) -> None:
        """The job's state says so; every worker's queue parks its requests until more budget is added."""
        if self.store is not None:
            self.store.set_state(job, EXHAUSTED)
        else:
            self.server.hset(keys.job(job), "state", EXHAUSTED)


def add_budget(server: Any, job_id: str, usd: float, default_usd: float = 0.0) -> tuple[int, int]:
    """``scrapy admin budget JOB +USD``: raise the job's budget; ``(budget, spent)`` in micro-dollars after."""
    pipe = server.pipeline()
    pipe.hsetnx(keys.budget(job_id), "budget", micro(default_usd))
    pipe.hincrby(keys.budget(job_id), "budget", micro(usd))
    pipe.hget(keys.budget(job_id), "spent")
    _, total, spent = pipe.execute()
    return int(total), int(spent or 0)


def spend_of(server: Any, job_id: str) -> dict[str, Any]:
    """A job's money for ``scrapy status``: ``{"budget_usd", "spent_usd", "reserved_usd", "apps": {app: usd}}``
    (budget None when the job has none)."""
    from tweetform.cost import usd

    pipe = server.pipeline(transaction=False)
    pipe.hgetall(keys.budget(job_id))
    pipe.zrange(keys.budget_reserved(job_id), 0, -1, withscores=True)
    pipe.time()  # reservations expire on Redis's clock, as in the scripts
    money, open_reservations, (seconds, micros) = pipe.execute()
    raw = {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in money.items()}
    now = seconds + micros / 1e6
    reserved = sum(int((m.decode() if isinstance(m, bytes) else m).rpartition("|")[2])
                   for m, until in open_reservations if until > now)
    return {"budget_usd": usd(raw["budget"]) if raw.get("budget") else None, "spent_usd": usd(raw.get("spent", 0)),
            "reserved_usd": usd(reserved),
            "apps": {k[4:]: usd(v) for k, v in sorted(raw.items()) if k.startswith("app:")}}


class BudgetArgumentError(ValueError):
    """A bad ``scrapy admin budget`` argument; the message is the one line shown."""


def admin_budget(server: Any, job_id: str, amount: str, default_usd: float = 0.0) -> str:
    """``scrapy admin budget JOB +USD``: raise a job's budget; a job stopped at its budget goes on.
    Returns the line to print."""
    from tweetform.cost import dollars
    from tweetform.state.redis import control
    from tweetform.state.redis.jobs import RedisJobStore

    try:
        more = float(amount.strip().lstrip("+").lstrip("$"))
    except ValueError:
        raise BudgetArgumentError(f"the amount must be US dollars to add, like +5, not {amount!r}") from None
    if not 0 < more < float("inf"):
        raise BudgetArgumentError(f"the amount to add must be more than 0 US dollars, not {amount!r}")
    job = RedisJobStore(server).load(job_id)
    if job is None:
        raise BudgetArgumentError(f"no job {job_id!r} in Redis")
    base = job.budget or default_usd
    if base == float("inf"):
        raise BudgetArgumentError(f"job {job_id} runs without a budget (budget=unlimited): there is none to raise")
    total, spent = add_budget(server, job_id, more, base)
    state = server.hget(keys.job(job_id), "state")
    resumed = (state.decode() if isinstance(state, bytes) else state) == EXHAUSTED
    if resumed:
        control.set_job_state(server, job_id, "running")  # its parked requests go back to the queues
    return (f"job {job_id}: budget {dollars(total)}, spent {dollars(spent)}"
            + (" — it continues" if resumed else ""))
