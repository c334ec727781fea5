"""A job's budget across hosts whose clocks disagree: reservations expire on Redis's clock, not a host's."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis

from tweetform.cost import redis_budget

AHEAD = 1800.0  # a host whose clock is 30 minutes fast: more than RESERVATION_TTL
BUDGET = 1_500_000  # $1.50 in micro-dollars


def held(r: redis.Redis, job: str) -> tuple[int, int]:
    """(spent, every open reservation, lapsed or not) as Redis holds them: what the job may still be billed."""
    spent = int(r.hget(f"tweetform:job:{job}:budget", "spent") or 0)
    return spent, sum(int(m.decode().rpartition("|")[2]) for m in r.zrange(f"tweetform:job:{job}:budget:reserved", 0, -1))


@pytest.fixture
def fast_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[], Any]:
    """``with fast_clock():`` this process's time.time() runs AHEAD seconds fast — for one book's calls only."""
    real = time.time

    @contextmanager
    def ahead() -> Iterator[None]:
        monkeypatch.setattr(time, "time", lambda: real() + AHEAD)
        try:
            yield
        finally:
            monkeypatch.setattr(time, "time", real)

    return ahead


def test_a_fast_host_keeps_the_other_hosts_reservations(redis_url: str, fast_clock):
    r = redis.Redis.from_url(redis_url)
    fast, right = redis_budget.RedisBudget(r), redis_budget.RedisBudget(r)

    def within_budget() -> None:
        spent, reserved = held(r, "j")
        assert spent + reserved <= BUDGET

    assert right.reserve("j", BUDGET, 1_000_000, ("right", 1))
    within_budget()
    with fast_clock():
        # the right host's $1 is still held: the fast host's sweep must not drop it to make room
        assert not fast.reserve("j", BUDGET, 1_000_000, ("fast", 1))
        within_budget()
        assert fast.reserve("j", BUDGET, 500_000, ("fast", 2))
        within_budget()
        assert fast.left("j", BUDGET) == 0
    members = {m.decode() for m in r.zrange("tweetform:job:j:budget:reserved", 0, -1)}
    assert members == {"right:1|1000000", "fast:2|500000"}

    right.settle("j", 1_000_000, 900_000, {"app": 900_000}, ("right", 1))
    # the fast host's reservation still counts for the right host (its sweep drops nothing live either)
    assert right.left("j", BUDGET) == 100_000
    assert not right.reserve("j", BUDGET, 200_000, ("right", 2))
    assert right.reserve("j", BUDGET, 100_000, ("right", 3))
    within_budget()
    assert {m.decode() for m in r.zrange("tweetform:job:j:budget:reserved", 0, -1)} == {"fast:2|500000", "right:3|100000"}

    with fast_clock():
        # scrapy status on the fast host counts the open reservations too
        assert redis_budget.spend_of(r, "j")["reserved_usd"] == pytest.approx(0.6)
        fast.settle("j", 500_000, 400_000, {"app": 400_000}, ("fast", 2))
        assert fast.left("j", BUDGET) == 100_000
    right.settle("j", 100_000, 100_000, {"app": 100_000}, ("right", 3))
    assert redis_budget.spend_of(r, "j") == {"budget_usd": 1.5, "spent_usd": 1.4, "reserved_usd": 0.0, "apps": {"app": 1.4}}


def script_exists_calls(r: redis.Redis) -> int:
    return int(r.info("commandstats").get("cmdstat_script|exists", {}).get("calls", 0))


def test_the_spend_of_jobs_without_a_budget_is_sent_in_one_round_trip_even_after_redis_lost_its_scripts(redis_url: str):
    r = redis.Redis.from_url(redis_url)
    book = redis_budget.RedisBudget(r)
    book.pending = {"a": (300, {"app1": 300}), "b": (200, {"app2": 200})}
    r.config_resetstat()
    book.flush()
    # by digest: redis-py's script(client=pipe) asked SCRIPT EXISTS first, one more round trip per flush
    assert script_exists_calls(r) == 0
    assert held(r, "a") == (300, 0) and held(r, "b") == (200, 0)
    assert not book.pending
    r.script_flush()  # a restarted Redis: the settle is loaded again and nothing is lost or counted twice
    book.pending = {"a": (50, {"app1": 50})}
    book.flush()
    assert held(r, "a") == (350, 0)
    assert int(r.hget("tweetform:job:a:budget", "app:app1")) == 350
