"""One suite of scenarios every state backend must pass: the local one in memory, the local
one in a JOBDIR (SQLite), and Redis (a real server). Job state (claims, levels, counters,
job state) and quota (reserve, answer, 429, reset): the rules are the same whichever
backend a crawl uses, and a backend that keeps state (SQLite, Redis) keeps it across a
restart of the process that wrote it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import redis

from tweetform.api.endpoints import ENDPOINTS
from tweetform.api.limits import PER_SECOND
from tweetform.credentials import parse_credentials
from tweetform.quota.book import QuotaBook
from tweetform.quota.pool import CredentialPool
from tweetform.job import JobArgs
from tweetform.state.base import DONE, GONE, RUNNING, JobStore
from tweetform.state.local.database import Database
from tweetform.state.local.memory import MemoryJobStore
from tweetform.state.local.sqlite import SqliteJobStore

FOLLOWING = ENDPOINTS["/2/users/:id/following"]


# --- job state ---------------------------------------------------------------------------

class Backend:
    """A job store, and how to get it back as a new process would (``reopen``)."""

    def __init__(self, make: Callable[[], JobStore], close: Callable[[JobStore], None] = lambda s: None, keeps: bool = True) -> None:
        self.make, self._close, self.keeps = make, close, keeps
        self.store = make()

    def reopen(self) -> JobStore:
        if self.keeps:
            self._close(self.store)
            self.store = self.make()
        return self.store


@pytest.fixture(params=["memory", "sqlite", "redis"])
def backend(request: Any, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "memory":
        yield Backend(MemoryJobStore, keeps=False)  # one process: "reopen" is the same store
    elif request.param == "sqlite":
        dbs: list[Database] = []

        def make() -> JobStore:
            dbs.append(Database(tmp_path / "job"))
            return SqliteJobStore(dbs[-1])

        yield Backend(make, lambda s: dbs[-1].close())
        dbs[-1].close()
    else:
        from tweetform.state.redis.jobs import RedisJobStore

        url = request.getfixturevalue("redis_url")
        yield Backend(lambda: RedisJobStore(redis.Redis.from_url(url)))


def job(job_id: str = "j1", **kw: Any) -> JobArgs:
    return JobArgs(spider="friends", job=job_id, api="2", bucket="friend_ids", user_ids=[1], **kw)


def test_a_saved_job_is_known_running_and_kept(backend: Backend):
    store = backend.store
    assert store.load("j1") is None and store.state("j1") == GONE
    store.save(job(depth=3))
    assert store.state("j1") == RUNNING
    store = backend.reopen()
    assert store.load("j1") == job(depth=3)
    store.save(job(depth=3))  # saving again (a resumed job) keeps what it has
    assert store.state("j1") == RUNNING


def test_users_are_claimed_once_per_job_and_again_by_the_same_claimer(backend: Backend):
    store = backend.store
    a, b = job("a"), job("b")
    store.save(a)
    store.save(b)
    assert store.claim_users(a, [1, 2, 3], 1, "seed") == [1, 2, 3]
    assert store.claim_users(a, [2, 3, 4], 2, "page-1") == [4]
    store = backend.reopen()
    assert store.claim_users(a, [4], 2, "page-1") == [4]  # page-1 fetched again: its users are its own
    assert store.claim_users(a, [4, 5], 2, "page-2") == [5]
    assert store.claim_users(b, [4], 1, "seed") == [4]  # another job claims for itself
    assert store.expanded_count(a) == 5 and store.expanded_count(b) == 1


def test_max_users_caps_claims_across_levels(backend: Backend):
    store = backend.store
    j = job(max_users=4, depth=3)
    store.save(j)
    assert store.claim_users(j, [1], 1, "seed") == [1]
    assert store.claim_users(j, [5, 6], 2, "level:2") == [5, 6]
    store = backend.reopen()
    assert store.claim_users(j, [7, 8, 9], 3, "level:3") == [7]
    assert store.claim_users(j, [10], 3, "level:3") == []
    assert store.expanded_count(j) == 4


def test_a_level_ends_when_every_request_is_done_and_lists_the_next_in_bfs_order(backend: Backend):
    store = backend.store
    j = job(max_users=100, depth=3)
    store.save(j)
    store.claim_users(j, [5, 6], 2, "level:2")
    store.requests_opened(j, 2, ["u5p0", "u6p0"])
    store.record_found(j, 2, 6, 0, [60, 61])  # pages arrive in any order
    assert store.request_done(j, 2, "u6p0") is None
    store.requests_opened(j, 2, ["u5p1"])  # 5 has a second page
    store.record_found(j, 2, 5, 1, [52])
    store = backend.reopen()
    assert store.request_done(j, 2, "u5p1") is None
    store.record_found(j, 2, 5, 0, [50, 51])
    assert store.request_done(j, 2, "u5p0") == [50, 51, 52, 60, 61]  # user order, then page order
    assert store.request_done(j, 2, "u5p0") == [50, 51, 52, 60, 61]  # a page finished twice: the same answer


def test_counters_add_up(backend: Backend):
    store = backend.store
    store.save(job())
    store.progress("j1", pages=2, errors=1)
    store.progress("j1", pages=3)
    store.flush()
    store = backend.reopen()
    assert store.status("j1").counters == {"pages": 5, "errors": 1}


def test_a_finished_job_records_when_it_finished(backend: Backend):
    store = backend.store
    store.save(job())
    status = store.status("j1")
    assert status.state == RUNNING and status.created and status.finished_at is None
    store.set_state("j1", DONE)
    store = backend.reopen()
    status = store.status("j1")
    assert status.state == DONE and status.finished_at is not None and status.finished_at >= status.created
    assert store.status("nope").state == GONE


# --- quota -------------------------------------------------------------------------------

MARGIN = 0.2


@pytest.fixture(params=["local", "redis"])
def make_book(request: Any) -> Callable[[int], Any]:
    """A quota book over ``n`` user credentials, on the real clock (the Redis book's time is its own)."""

    def make(n: int = 1, app: bool = False) -> Any:
        creds = [{"alias": f"a{i}", "bearer_token": f"b{i}"} if app else
                 {"alias": f"u{i}", "app_key": f"k{i}", "app_secret": "s", "oauth_token": "t", "oauth_token_secret": "x"}
                 for i in range(n)]
        pool = CredentialPool(parse_credentials(creds))
        if request.param == "local":
            return QuotaBook(pool, margin=MARGIN)
        from tweetform.state.redis.quota import RedisQuotaBook

        return RedisQuotaBook(pool, redis.Redis.from_url(request.getfixturevalue("redis_url")), margin=MARGIN)

    return make


def headers(limit: int, remaining: int, reset: float) -> dict[str, str]:
    return {"x-rate-limit-limit": str(limit), "x-rate-limit-remaining": str(remaining), "x-rate-limit-reset": str(int(reset))}


def reserve_all(book: Any, most: int = 20) -> list[str]:
    out = []
    for _ in range(most):
        r = book.reserve(FOLLOWING)
        if r is None:
            break
        out.append(r)
    return out


def wait_until(t: float) -> None:
    while time.time() < t:
        time.sleep(max(0.01, t - time.time()))


def test_quota_one_probe_then_the_reported_remaining(make_book):
    book = make_book(1)
    probe = book.reserve(FOLLOWING)
    assert probe is not None and book.reserve(FOLLOWING) is None  # limit unknown: one probe at a time
    book.answered(probe, 200, headers(5, 3, time.time() + 600))
    assert len(reserve_all(book)) == 3
    assert not book.available_now(FOLLOWING)


def test_quota_prefers_the_lane_whose_window_resets_first(make_book):
    book = make_book(2)
    first, second = book.reserve(FOLLOWING), book.reserve(FOLLOWING)
    assert {first.lane.alias, second.lane.alias} == {"u0", "u1"}
    now = time.time()
    book.answered(first, 200, headers(10, 5, now + 900))
    book.answered(second, 200, headers(10, 5, now + 300))
    assert {r.lane.alias for r in reserve_all(book, 5)} == {second.lane.alias}


def test_quota_cancel_gives_back_and_a_failure_counts(make_book):
    book = make_book(1)
    probe = book.reserve(FOLLOWING)
    book.answered(probe, 200, headers(10, 2, time.time() + 600))
    a, b = reserve_all(book)
    book.cancel(a)  # never sent
    c = book.reserve(FOLLOWING)
    assert c is not None and book.reserve(FOLLOWING) is None
    book.failed(b)  # sent, no answer: the API may have counted it
    book.failed(c)
    assert book.reserve(FOLLOWING) is None


def test_quota_after_a_429_waits_for_the_reset_then_has_the_whole_limit(make_book):
    book = make_book(1)
    probe = book.reserve(FOLLOWING)
    reset = int(time.time()) + 2
    book.answered(probe, 200, headers(4, 2, reset))
    sent = reserve_all(book)
    assert len(sent) == 2
    book.answered(sent[0], 429, headers(4, 0, reset))  # the API says: nothing left
    book.answered(sent[1], 200, headers(4, 1, reset))  # an older count does not give quota back
    assert book.reserve(FOLLOWING) is None
    ready = book.ready_at(FOLLOWING)
    assert ready == pytest.approx(reset + MARGIN, abs=0.01)
    wait_until(ready + 0.05)
    assert len(reserve_all(book)) == 4  # a new window: the whole limit


def test_quota_per_second_429_blocks_about_a_second(make_book):
    book = make_book(1)
    probe = book.reserve(FOLLOWING)
    book.answered(probe, 200, headers(50, 40, time.time() + 600))
    r = book.reserve(FOLLOWING)
    book.answered(r, 429, headers(50, 39, time.time() + 600))  # remaining > 0: a per-second limit
    assert book.reserve(FOLLOWING) is None
    wait_until(time.time() + 1.05)
    assert book.reserve(FOLLOWING) is not None


def test_quota_spaces_the_per_second_endpoints_of_api_limits_and_no_other(make_book):
    """tweetform.api.limits.PER_SECOND is the one list: both books (the Python one and the Redis reserve
    script) keep one lane's requests to those endpoints a second apart, and no other endpoint's."""
    book = make_book(1, app=True)
    keys = ("/2/tweets/search/all", "/2/tweets/search/recent")
    for key in keys:
        book.answered(book.reserve(ENDPOINTS[key]), 200, headers(300, 200, time.time() + 600))
    wait_until(time.time() + 1.1)  # past the probes' own spacing
    for key in keys:
        assert book.reserve(ENDPOINTS[key]) is not None
        assert (book.reserve(ENDPOINTS[key]) is None) == (key in PER_SECOND), key
