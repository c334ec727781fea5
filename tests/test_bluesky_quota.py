"""Bluesky's quota: one pool per client IP for every XRPC method, learnt from ``ratelimit-*``
headers or, where a host sends none, paced by TWEETFORM_BLUESKY_RATE (both quota books)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any, Callable, TypeVar

import pytest
import redis

from tweetform.api.endpoints import ENDPOINTS
from tweetform.quota.book import QuotaBook, pace_slices
from tweetform.proxies.config import ip_lanes
from tweetform.quota.pool import CredentialPool
from tweetform.state.redis import quota as redis_quota
from tweetform.state.redis.quota import RedisQuotaBook

T = TypeVar("T")
FOLLOWS, PROFILES = ENDPOINTS["app.bsky.graph.getFollows"], ENDPOINTS["app.bsky.actor.getProfiles"]


@pytest.fixture(params=["memory", "redis"])
def make_book(request: Any) -> Any:
    def make(proxies: list[str], rate: int, clock: Callable[[], float] = time.time) -> Any:
        pool = CredentialPool(ip_lanes(proxies))
        if request.param == "memory":
            return QuotaBook(pool, bluesky_rate=rate, clock=clock)  # the shared book reads Redis's TIME
        return RedisQuotaBook(pool, redis.Redis.from_url(request.getfixturevalue("redis_url")), bluesky_rate=rate)
    return make


def redis_time(server: redis.Redis) -> float:
    """Redis's TIME: the clock the shared book's scripts count pacing slices on."""
    seconds, micros = server.time()
    return seconds + micros / 1e6


def in_one_slice(run: Callable[[], T], clock: Callable[[], float], span: int, fresh: Callable[[], None]) -> T:
    """``run()``'s result from a run that began and ended in one pacing slice of ``span`` seconds (on
    ``clock``, the book's). A run a slice boundary cut through sent one slice's share before it and
    another after it, which is the pacing working, not one slice's share: it is run again on fresh
    state (``fresh``), just after the boundary, so with a whole slice ahead."""
    for _ in range(3):
        began = int(clock()) // span
        result = run()
        if int(clock()) // span == began:
            return result
        fresh()
    raise AssertionError(f"three runs in a row were cut by a {span}-s slice boundary")


def drain(book: Any, endpoints: list[Any], headers: dict[str, str]) -> dict[str, int]:
    """Reserve and answer until nothing may go; requests sent per lane."""
    sent: dict[str, int] = {}
    for turn in range(100):
        r = book.reserve(endpoints[turn % len(endpoints)])
        if r is None:
            break
        sent[r.lane.alias] = sent.get(r.lane.alias, 0) + 1
        book.answered(r, 200, headers)
    return sent


def test_every_method_draws_on_one_pool_per_ip_paced_by_the_setting_without_headers(
        make_book: Any, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    server = redis.Redis.from_url(redis_url)

    def redis_clock() -> float:
        return redis_time(server)

    # every clock here is Redis's: the memory book's own, and the one the shared book converts its answer to
    monkeypatch.setattr(redis_quota, "time", SimpleNamespace(time=redis_clock))
    per, span = pace_slices(40)
    assert (per, span) == (8, 75)  # 4 slices of 75 s: any 5 minutes touches 5 of them, 5 x 8 = 40

    def run() -> tuple[float, dict[str, int], float | None, float]:
        book = make_book([], 40, clock=redis_clock)
        began = redis_clock()
        sent = drain(book, [FOLLOWS, PROFILES], {})
        return began, sent, book.ready_at(FOLLOWS), redis_clock()

    began, sent, ready, now = in_one_slice(run, redis_clock, span, server.flushdb)
    assert sent == {"ip:direct:localhost": per}  # not per method
    next_slice = (int(began) // span + 1) * span
    assert ready is not None and now < ready and next_slice <= ready <= next_slice + 1.5  # the slice's end (+ margin)


def test_two_proxies_are_two_lanes_each_within_its_limit(make_book: Any, redis_url: str) -> None:
    server = redis.Redis.from_url(redis_url)  # the memory book's clock is time.time: the same clock as Redis's TIME here
    sent = in_one_slice(lambda: drain(make_book(["http://127.0.0.1:3128", "http://127.0.0.1:3129"], 40), [FOLLOWS], {}),
                        lambda: redis_time(server), pace_slices(40)[1], server.flushdb)
    assert sent == {"ip:127.0.0.1:3128": 8, "ip:127.0.0.1:3129": 8}


@pytest.mark.parametrize("rate", [2, 3, 7, 40, 165, 3000])
def test_paced_by_the_setting_no_five_minutes_ever_holds_more_than_the_rate(rate: int) -> None:
    """A host that publishes no limit counts in 5-minute windows of its own, from whenever: in no
    5-minute interval, wherever it starts, may a lane send more than TWEETFORM_BLUESKY_RATE. Fixed
    windows on the epoch sent the rate at the end of one and again at the start of the next."""
    now = [1_800_000_000.0 - 1.0]  # just before a 5-minute boundary of the epoch
    book = QuotaBook(CredentialPool(ip_lanes([])), clock=lambda: now[0], margin=0.0, bluesky_rate=rate)
    sent: list[float] = []
    while now[0] < 1_800_000_000 + 1500:  # 25 minutes, a request whenever the book lets one go
        r = book.reserve(FOLLOWS)
        if r is None:
            now[0] += 0.5
            continue
        sent.append(now[0])
        book.answered(r, 200, {})
    busiest = max(sum(1 for t in sent if start <= t < start + 300) for start in sent)
    assert busiest <= rate
    assert len(sent) >= rate * 5 * (0.9 if rate == 3000 else 0.5)  # and most of it is used (90 % at the default)


def test_ratelimit_headers_win_over_the_setting(make_book: Any) -> None:
    book = make_book([], 3000)
    reset = str(int(time.time()) + 300)
    r = book.reserve(FOLLOWS)
    book.answered(r, 200, {"ratelimit-limit": "10", "ratelimit-remaining": "2", "ratelimit-reset": reset})
    in_flight = [book.reserve(PROFILES), book.reserve(FOLLOWS)]  # the 2 the host says are left, whatever the method
    assert all(in_flight) and book.reserve(PROFILES) is None


def test_bluesky_credentials_never_show_their_app_password() -> None:
    from tweetform.credentials import CredentialError, parse_credentials

    secret = "abcd-efgh-ijkl-mnop"
    [cred] = parse_credentials([{"alias": "lab", "handle": "Alice.Example.com", "app_password": secret}])
    assert cred.kind == "bluesky" and cred.handle == "alice.example.com" and secret in cred.secrets()
    assert secret not in repr(cred) and secret not in str(cred)
    for bad in ({"alias": "lab", "handle": "a.b", "app_password": secret, "bearer_token": "x"},
                {"alias": "lab", "app_password": secret},
                {"alias": "lab", "handle": "a.b", "app_password": secret + " x"}):
        with pytest.raises(CredentialError) as refused:
            parse_credentials([bad])
        assert secret not in str(refused.value) and "'lab'" in str(refused.value)
    # the X pool never makes a lane of it: its lanes for Bluesky are IPs
    pool = CredentialPool([cred, *ip_lanes([])])
    assert [lane.alias for lane in pool.lanes(FOLLOWS)] == ["ip:direct:localhost"]
    assert pool.lanes(ENDPOINTS["/2/users/:id/following"]) == []


def test_a_worker_whose_clock_is_past_the_window_still_shares_the_paced_window(redis_url: str) -> None:
    """Two workers pace one IP lane by TWEETFORM_BLUESKY_RATE; one host's clock runs past the next
    5-minute (and slice) boundary. Its own clock would open the next slice early (a second full share in
    one real slice); the slice is Redis's (TIME), so both count in the same one."""
    from unittest import mock

    server = redis.Redis.from_url(redis_url)
    real = time.time

    def run() -> int:
        shared = CredentialPool(ip_lanes([]))
        right = RedisQuotaBook(shared, redis.Redis.from_url(redis_url), bluesky_rate=40)
        ahead = RedisQuotaBook(shared, redis.Redis.from_url(redis_url), bluesky_rate=40)
        offset = (int(real()) // 300 + 1) * 300 - real() + 5  # 5 s into the next window on the fast host
        sent = 0
        for turn in range(40):
            book = (right, ahead)[turn % 2]
            with mock.patch("time.time", (lambda: real() + offset) if book is ahead else real):
                r = book.reserve(FOLLOWS)
                if r is not None:
                    sent += 1
                    book.answered(r, 200, {})
        return sent

    assert in_one_slice(run, lambda: redis_time(server), pace_slices(40)[1], server.flushdb) == pace_slices(40)[0]


def _worker_book(redis_url: str, **settings: str) -> Any:
    """The quota book a worker with these settings uses (its add-on makes the pool and the shared book)."""
    from crawling import unit_crawler

    from tweetform import state

    crawler = unit_crawler(settings_dict={"REDIS_URL": redis_url, "TWEETFORM_CREDENTIALS": [], "TWEETFORM_BLUESKY_RATE": 40,
                                          **settings})
    return state.book(crawler)


def test_workers_on_two_hosts_pace_their_own_ip_each_and_one_nat_name_shares_one(redis_url: str) -> None:
    """Without proxies each host's direct lane is its own IP: two hosts (their host names, or
    TWEETFORM_DIRECT_LANE) get a limit each; hosts behind one NAT give one name and share it."""
    import socket

    def sent_by(books: list[Any]) -> dict[str, int]:
        sent: dict[str, int] = {}
        for turn in range(40):
            book = books[turn % len(books)]
            r = book.reserve(FOLLOWS)
            if r is not None:
                sent[r.lane.alias] = sent.get(r.lane.alias, 0) + 1
                book.answered(r, 200, {})
        return sent

    def sent_in_one_slice(*names: str) -> dict[str, int]:
        return in_one_slice(lambda: sent_by([_worker_book(redis_url, TWEETFORM_DIRECT_LANE=n) for n in names]),
                            lambda: redis_time(server), pace_slices(40)[1], server.flushdb)

    server = redis.Redis.from_url(redis_url)
    own = _worker_book(redis_url)
    assert [lane.alias for lane in own.pool.lanes(FOLLOWS)] == [f"ip:direct:{socket.gethostname()}"]
    assert sent_in_one_slice("host-a", "host-b") == {"ip:direct:host-a": 8, "ip:direct:host-b": 8}  # 8 per 75-s slice each
    assert sent_in_one_slice("lab-nat", "lab-nat") == {"ip:direct:lab-nat": 8}  # 8 together (40 per 5 min)


def test_a_bad_direct_lane_name_is_one_line(tmp_path: Any) -> None:
    import subprocess
    import sys

    from crawling import ROOT, crawl_env

    from tweetform import exitcodes

    env = {**crawl_env(type("Box", (), {"base": "http://127.0.0.1:9"})(), tmp_path / "out", []),
           "TWEETFORM_DIRECT_LANE": "lab nat/../x"}
    done = subprocess.run([sys.executable, "-m", "scrapy", "crawl", "friends", "-a", "api=bluesky", "-a",
                           "user_id=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == exitcodes.BAD_INPUT and len(lines) == 1 and "TWEETFORM_DIRECT_LANE" in lines[0], done.stderr[-2000:]
    assert not (tmp_path / "out").exists()


def test_a_rate_below_two_is_bad_input() -> None:
    """No fixed slices keep every 5-minute interval to one request: TWEETFORM_BLUESKY_RATE=1 is refused."""
    import tweetform.settings as defaults
    from tweetform.config import SettingsError, check_types

    with pytest.raises(SettingsError) as refused:
        check_types({"TWEETFORM_BLUESKY_RATE": 1}, vars(defaults), "settings_local.py")
    assert str(refused.value) == "settings_local.py: TWEETFORM_BLUESKY_RATE must be at least 2, not 1"
    check_types({"TWEETFORM_BLUESKY_RATE": 2}, vars(defaults), "ok")
