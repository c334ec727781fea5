"""The quota rules, once per backend: the in-process book and the Redis book (Lua, on the real Redis
of the test session) run the same scenarios and must agree. The Redis book's time is Redis's own."""

from __future__ import annotations

import time
from typing import Any
from unittest import mock

import pytest
import redis

from tweetform.api.endpoints import ENDPOINTS
from tweetform.credentials import parse_credentials
from tweetform.quota.book import QuotaBook
from tweetform.quota.pool import CredentialPool
from tweetform.state.redis.quota import RedisQuotaBook

FOLLOWING = ENDPOINTS["/2/users/:id/following"]
MARGIN = 0.5


def pool(n_users: int) -> CredentialPool:
    creds = [{"alias": f"u{i}", "app_key": f"k{i}", "app_secret": "s", "oauth_token": "t", "oauth_token_secret": "x"} for i in range(n_users)]
    return CredentialPool(parse_credentials(creds))


@pytest.fixture(params=["memory", "redis"])
def make_book(request: Any, redis_url: str) -> Any:
    def make(n_users: int = 1) -> Any:
        if request.param == "memory":
            return QuotaBook(pool(n_users), margin=MARGIN)
        return RedisQuotaBook(pool(n_users), redis.Redis.from_url(redis_url), margin=MARGIN, hold=60)

    return make


def headers(limit: int, remaining: int, reset: float) -> dict[str, str]:
    return {"x-rate-limit-limit": str(limit), "x-rate-limit-remaining": str(remaining), "x-rate-limit-reset": str(int(reset))}


def test_one_probe_per_lane_until_the_limit_is_known(make_book):
    book = make_book(2)
    first, second = book.reserve(FOLLOWING), book.reserve(FOLLOWING)
    assert {first.lane.alias, second.lane.alias} == {"u0", "u1"}
    assert book.reserve(FOLLOWING) is None
    book.answered(first, 200, headers(3, 2, time.time() + 900))
    got = [book.reserve(FOLLOWING) for _ in range(3)]
    assert [r.lane.alias if r else None for r in got] == [first.lane.alias, first.lane.alias, None]


def test_never_more_than_the_limit_and_ready_at_the_reset(make_book):
    book = make_book(1)
    reset = int(time.time()) + 900
    book.answered(book.reserve(FOLLOWING), 200, headers(15, 14, reset))
    assert sum(1 for _ in range(20) if book.reserve(FOLLOWING)) == 14
    assert not book.available_now(FOLLOWING)
    assert abs(book.ready_at(FOLLOWING) - (reset + MARGIN)) < 1.0


def test_a_window_that_is_over_gives_the_full_limit_back(make_book):
    book = make_book(1)
    book.answered(book.reserve(FOLLOWING), 200, headers(5, 0, time.time() - 10))  # the window ended 10 s ago
    assert book.available_now(FOLLOWING)
    assert sum(1 for _ in range(9) if book.reserve(FOLLOWING)) == 5


def test_out_of_order_answers_do_not_overspend(make_book):
    book = make_book(1)
    reset = time.time() + 900
    book.answered(book.reserve(FOLLOWING), 200, headers(10, 9, reset))
    a, b = book.reserve(FOLLOWING), book.reserve(FOLLOWING)
    book.answered(b, 200, headers(10, 7, reset))
    book.answered(a, 200, headers(10, 8, reset))  # older, arrives later: the lower count stands
    assert sum(1 for _ in range(10) if book.reserve(FOLLOWING)) == 7


def test_a_per_second_429_blocks_about_a_second_not_the_window(make_book):
    book = make_book(1)
    book.answered(book.reserve(FOLLOWING), 429, headers(15, 10, time.time() + 900))
    assert not book.available_now(FOLLOWING)
    assert seconds_until_ready(book) <= 1.0 + MARGIN  # not the window's 900 s


def seconds_until_ready(book: Any) -> float:
    """How far away the book says quota is, on the book's own clock (the Redis book's: Redis's TIME)."""
    if isinstance(book, QuotaBook):
        return book.ready_at(FOLLOWING) - book.clock()
    # the Redis book's ready_at is Redis's time of readiness less Redis's now, plus this host's time.time()
    with mock.patch("time.time", lambda: 0.0):
        return book.ready_at(FOLLOWING)


def test_failed_counts_one_and_cancel_frees(make_book):
    book = make_book(1)
    book.answered(book.reserve(FOLLOWING), 200, headers(5, 3, time.time() + 900))
    book.cancel(book.reserve(FOLLOWING))
    book.failed(book.reserve(FOLLOWING))  # no answer: assume the API counted it
    assert sum(1 for _ in range(5) if book.reserve(FOLLOWING)) == 2


def test_the_lane_whose_window_ends_first_is_used_first(make_book):
    book = make_book(2)
    r0, r1 = book.reserve(FOLLOWING), book.reserve(FOLLOWING)
    soon, late = (r0, r1) if r0.lane.alias == "u0" else (r1, r0)
    book.answered(late, 200, headers(15, 10, time.time() + 800))
    book.answered(soon, 200, headers(15, 10, time.time() + 100))
    assert book.reserve(FOLLOWING).lane.alias == soon.lane.alias


def test_a_worker_with_a_clock_30s_off_still_keeps_the_shared_quota(redis_url: str):
    """Two workers share a lane; one host's clock runs 30 s ahead. The API's window ends in 20 s:
    the fast clock would think it over and spend a fresh window now. Redis's TIME decides instead."""
    server = redis.Redis.from_url(redis_url)
    shared = pool(1)
    right = RedisQuotaBook(shared, server, margin=MARGIN, hold=60)
    ahead = RedisQuotaBook(shared, redis.Redis.from_url(redis_url), margin=MARGIN, hold=60)
    real = time.time
    reset = int(real()) + 20
    right.answered(right.reserve(FOLLOWING), 200, headers(3, 0, reset))  # the window is used up
    with mock.patch("time.time", lambda: real() + 30):  # everything the fast host reads from its clock
        assert not ahead.available_now(FOLLOWING)
        assert ahead.reserve(FOLLOWING) is None
        wake = ahead.ready_at(FOLLOWING)
        delay = wake - time.time()  # in the fast host's own clock: when to look again
    assert 15 < delay < 25  # about the real 20 s, not "now" (it would wake and spin) nor 50 s
    assert right.reserve(FOLLOWING) is None


SEARCH = ENDPOINTS["/2/tweets/search/all"]  # one request a second per lane: a take sets the lane's next time


def redis_time(server: redis.Redis) -> float:
    sec, usec = server.time()
    return sec + usec / 1e6


def random_lane(rng: Any, now: int, margin: float) -> dict[str, Any]:
    """One lane's quota state, far enough from every time boundary that a few ms between the books do not matter."""
    limit = rng.choice([None, 3, 15])
    reset = rng.choice([0, now + 100, now + 100, now + 300, now - margin / 2, now - margin - 20]) if limit else 0
    return {"limit": limit, "reset": reset, "srem": rng.choice([0, 1, 2, 3]) if limit else 0,
            "blocked": rng.choice([0, 0, 0, now + 5, now - 5]), "next": rng.choice([0, 0, 0, now + 5, now - 5]),
            "live": rng.choice([0, 0, 1, 2]), "expired": rng.choice([0, 0, 1])}  # reservations in flight, held past their hold


def lane_hash(h: dict[str, Any]) -> dict[str, Any]:
    fields = {"limit": h["limit"], "reset": h["reset"], "srem": h["srem"], "blocked": h["blocked"], "next": h["next"]}
    # a field never written is absent; limit, reset and srem are written together (quota_answered.lua)
    return {k: v for k, v in fields.items() if v not in (None, 0) or (h["limit"] and k in ("reset", "srem"))}


def random_answer(rng: Any, now: int) -> tuple[int, dict[str, str]]:
    """An answer's status and rate-limit headers (none, a window like the lane's, a newer or an ended one; a 429)."""
    status = rng.choice([200, 200, 200, 429])
    if rng.random() < 0.2:
        return status, {}
    return status, headers(rng.choice([3, 15]), rng.choice([0, 1, 2, 5, 14]), rng.choice([now + 100, now + 300, now + 600, now - 30]))


@pytest.mark.parametrize("endpoint", [FOLLOWING, SEARCH], ids=["following", "search-paced"])
def test_the_lane_chosen_and_the_quota_taken_agree_in_python_and_lua_whatever_the_lanes_state(redis_url: str, endpoint: Any):
    """quota/book.py and the quota scripts hold one rule: for 300 random states of 1-4 lanes (limits known or not,
    windows current, over or none, spent, blocked, paced, probes and reservations in flight, some held past their
    hold by a dead worker), the in-process book, the Redis book (quota_reserve.lua) and the queue's pop
    (queue_pop.lua) choose the same lane, three takes in a row, and leave the same quota behind; then every
    reservation is answered (quota_answered.lua: random headers, 429s, none) and the quota left and the next
    take agree again. Between the steps, both books say alike whether a request may go now and when one may."""
    import random

    from tweetform.quota.book import KeyQuota, Reservation, min_interval
    from tweetform.state.redis import keys, scripts

    server = redis.Redis.from_url(redis_url)
    pop = scripts.load(server, "queue_pop")
    margin, rng = 5.0, random.Random(15)
    interval = min_interval(endpoint.key)
    chosen_somewhere, learnt = set(), 0

    def same_quota(memory: QuotaBook, shared_book: RedisQuotaBook, lanes: list[Any], now: int, context: Any) -> None:
        """The same window, remaining, pacing, block and reservations in flight on every lane."""
        for lane in lanes:
            q = memory.keys[(lane, endpoint.bucket)]
            h, z = shared_book.lane_keys([lane], endpoint.bucket)
            limit, reset, srem, nxt, blocked = (float(v) if v is not None else None for v in server.hmget(h, "limit", "reset", "srem", "next", "blocked"))
            assert (limit, reset or 0.0, srem or 0.0) == (q.limit, q.reset, q.server_remaining), context
            assert server.zcount(z, f"({now + 1}", "+inf") == q.in_flight, context
            assert bool(nxt and nxt > now) == (q.next_allowed > now), context
            assert round(max(0.0, (blocked or 0.0) - now)) == round(max(0.0, q.blocked_until - now)), context  # none, ~1 s or ~60 s
        # and so the same answer to "may one go now?" (quota_available.lua) and "when?" (quota_ready_at.lua)
        assert shared_book.available_now(endpoint) == memory.available_now(endpoint), context
        mine, theirs = memory.ready_at(endpoint), shared_book.ready_at(endpoint)  # Redis's time and this host's: one machine
        assert (mine is None) == (theirs is None) and abs((mine or 0) - (theirs or 0)) < 0.5, context

    for case in range(300):
        now = int(server.time()[0])  # the states' times are around Redis's now; each book reads the time when it decides
        n = rng.randint(1, 4)
        cred = (lambda i: {"alias": f"c{case}u{i}", "bearer_token": "b"}) if endpoint is SEARCH else \
            (lambda i: {"alias": f"c{case}u{i}", "app_key": "k", "app_secret": "s", "oauth_token": "t", "oauth_token_secret": "x"})
        shared = CredentialPool(parse_credentials([cred(i) for i in range(n)]))
        memory = QuotaBook(shared, margin=margin, clock=lambda: redis_time(server))
        shared_book = RedisQuotaBook(shared, server, margin=margin, hold=60)
        lanes = shared.lanes(endpoint)
        states = [random_lane(rng, now, margin) for _ in lanes]
        taken: list[tuple[Reservation, Reservation]] = []  # (the memory book's, the Redis book's) reservations in flight
        for lane, s in zip(lanes, states):
            memory.keys[(lane, endpoint.bucket)] = KeyQuota(s["limit"], float(s["reset"]), s["srem"], s["live"], float(s["blocked"]), float(s["next"]))
            h, z = shared_book.lane_keys([lane], endpoint.bucket)
            if lane_hash(s):
                server.hset(h, mapping=lane_hash(s))
            for i in range(s["live"]):
                server.zadd(z, {f"live{i}": now + 60})
                taken.append((Reservation(lane, endpoint.bucket), Reservation(lane, endpoint.bucket, f"live{i}")))
            for i in range(s["expired"]):
                server.zadd(z, {f"dead{i}": now - 10})
        job, queue = f"job{case}", keys.queue("agree", endpoint.key)
        server.hset(keys.job(job), mapping={"state": "running", "queued": 2})
        server.zadd(queue, {f"{job}\t1\tone": 1, f"{job}\t2\ttwo": 2})
        for take in range(3):
            expected = memory.reserve(endpoint)
            if take == 1:
                got = shared_book.reserve(endpoint)
            else:
                answer = pop(keys=[keys.in_flight("agree"), keys.deliveries("agree"), queue, *shared_book.lane_keys(lanes, endpoint.bucket)],
                             args=["w", "L", keys.job_templates(), margin, 60, f"rid{take}", "", endpoint.key, len(lanes), interval])
                got = Reservation(lanes[int(answer[2]) - 1], endpoint.bucket, f"rid{take}") if answer[0] is not None else None
                if answer[0] is not None:
                    server.zadd(queue, {answer[1]: 0})  # back in the queue: the next take has a request too
            assert (got.lane.alias if got else None) == (expected.lane.alias if expected else None), (case, take, states)
            chosen_somewhere.add(lanes.index(expected.lane) if expected else None)
            if expected:
                taken.append((expected, got))
        same_quota(memory, shared_book, lanes, now, (case, states))
        for mine, theirs in taken:
            status, answer_headers = random_answer(rng, now)
            memory.answered(mine, status, answer_headers)
            shared_book.answered(theirs, status, answer_headers)
            learnt += bool(answer_headers)
        same_quota(memory, shared_book, lanes, now, (case, states, "answered"))
        expected, got = memory.reserve(endpoint), shared_book.reserve(endpoint)
        assert (got.lane.alias if got else None) == (expected.lane.alias if expected else None), (case, "after the answers", states)
    assert chosen_somewhere == {None, 0, 1, 2, 3} and learnt > 300  # the cases reach every outcome
    server.close()
