"""Quota: every credential's full limit used, never exceeded, no 429 provoked."""

from __future__ import annotations

from pathlib import Path

from crawling import bucket, demo_credentials, errors_of, ids_of, run_crawl, unit_crawler
from scrapy import Request
from scrapy.squeues import FifoMemoryQueue
from scrapy.utils.reactor import install_reactor, is_reactor_installed

from tweetform.api.endpoints import ENDPOINTS
from tweetform.credentials import parse_credentials
from tweetform import state
from tweetform.quota.book import QuotaBook, Reservation
from tweetform.quota.pool import CredentialPool, Lane
from tweetform.state.local.priority_queue import META_LANE, QuotaAwarePriorityQueue

FOLLOWING = ENDPOINTS["/2/users/:id/following"]
SEARCH_ALL = ENDPOINTS["/2/tweets/search/all"]
TWEETS = ENDPOINTS["/2/users/:id/tweets"]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def make_book(n_users: int = 2, apps: int = 0) -> tuple[QuotaBook, Clock]:
    creds = [{"alias": f"u{i}", "app_key": f"k{i}", "app_secret": "s", "oauth_token": "t", "oauth_token_secret": "x"} for i in range(n_users)]
    creds += [{"alias": f"a{i}", "bearer_token": f"b{i}"} for i in range(apps)]
    clock = Clock()
    return QuotaBook(CredentialPool(parse_credentials(creds)), margin=0.5, clock=clock), clock


def headers(limit: int, remaining: int, reset: float) -> dict[str, str]:
    return {"x-rate-limit-limit": str(limit), "x-rate-limit-remaining": str(remaining), "x-rate-limit-reset": str(int(reset))}


def test_one_probe_per_lane_until_the_limit_is_known():
    book, clock = make_book(2)
    first, second = book.reserve(FOLLOWING), book.reserve(FOLLOWING)
    assert {first.lane.alias, second.lane.alias} == {"u0", "u1"}
    assert book.reserve(FOLLOWING) is None  # both probes in flight
    book.answered(first, 200, headers(3, 2, clock.now + 10))
    got = [book.reserve(FOLLOWING) for _ in range(3)]
    assert [r.lane.alias if r else None for r in got] == [first.lane.alias, first.lane.alias, None]


def test_never_more_than_the_limit_per_window_and_quota_returns_after_reset():
    book, clock = make_book(1)
    r = book.reserve(FOLLOWING)
    book.answered(r, 200, headers(15, 14, clock.now + 900))
    sent = [book.reserve(FOLLOWING) for _ in range(20)]
    assert sum(1 for s in sent if s) == 14
    assert book.ready_at(FOLLOWING) == clock.now + 900 + 0.5
    clock.now += 900.6
    assert book.reserve(FOLLOWING) is not None


def test_out_of_order_answers_do_not_overspend():
    book, clock = make_book(1)
    probe = book.reserve(FOLLOWING)
    book.answered(probe, 200, headers(5, 4, clock.now + 60))
    flying = [book.reserve(FOLLOWING) for _ in range(4)]
    assert all(flying) and book.reserve(FOLLOWING) is None
    # the API counted all four; the answers come back in any order
    for remaining, r in zip([0, 3, 1, 2], flying):
        book.answered(r, 200, headers(5, remaining, clock.now + 60))
        assert book.reserve(FOLLOWING) is None


def test_per_second_429_waits_about_a_second_not_a_window():
    book, clock = make_book(0, apps=1)
    r = book.reserve(SEARCH_ALL)
    book.answered(r, 429, headers(300, 250, clock.now + 900))
    assert book.reserve(SEARCH_ALL) is None
    clock.now += 1.1
    assert book.reserve(SEARCH_ALL) is not None
    assert book.reserve(SEARCH_ALL) is None  # one request per second
    clock.now += 1.1
    assert book.reserve(SEARCH_ALL) is not None


def test_lane_whose_window_ends_first_is_used_first():
    book, clock = make_book(2)
    a, b = book.reserve(FOLLOWING), book.reserve(FOLLOWING)
    book.answered(a, 200, headers(15, 14, clock.now + 800))
    book.answered(b, 200, headers(15, 14, clock.now + 100))
    assert book.reserve(FOLLOWING).lane.alias == b.lane.alias


def test_app_only_endpoint_uses_app_lanes_and_retired_credentials_leave():
    book, _ = make_book(1, apps=1)
    assert {lane.kind for lane in book.pool.lanes(SEARCH_ALL)} == {"app"}
    assert book.pool.lanes(SEARCH_ALL)[0] == Lane("a0", "app")  # app credentials before users' apps
    book.pool.retire("a0", "test")
    book.pool.retire("u0", "test")
    assert not book.has_lanes(SEARCH_ALL) and not book.has_lanes(FOLLOWING)


def test_queue_holds_exhausted_endpoint_and_serves_others():
    if not is_reactor_installed():  # the queue schedules its wake-up on the reactor
        install_reactor("twisted.internet.asyncioreactor.AsyncioSelectorReactor")
    crawler = unit_crawler(settings_dict={
        "TWEETFORM_CREDENTIALS": [{"alias": "u0", "app_key": "k", "app_secret": "s", "oauth_token": "t", "oauth_token_secret": "x"}],
    })
    queue = QuotaAwarePriorityQueue(crawler, FifoMemoryQueue, "")
    book = state.book(crawler)
    # following is exhausted until far in the future
    r = book.reserve(FOLLOWING)
    book.answered(r, 200, headers(15, 0, book.clock() + 3600))
    for i in range(3):
        queue.push(Request(f"http://x/f{i}", meta={"tweetform_endpoint": FOLLOWING.key}))
    for i in range(2):
        queue.push(Request(f"http://x/t{i}", meta={"tweetform_endpoint": TWEETS.key}))
    first = queue.pop()
    assert first.url == "http://x/t0" and tuple(first.meta[META_LANE])[:2] == ("u0", "user")
    book.answered(Reservation(Lane("u0", "user"), TWEETS.key), 200, headers(900, 899, book.clock() + 900))
    assert queue.pop().url == "http://x/t1"
    assert queue.pop() is None and len(queue) == 3  # the following requests wait, none lost
    queue.close()


WORLD = ("--users", "3000", "--seed", "7", "--window", "2")


def test_several_credentials_never_exceed_limits_nor_get_429(sandbox_factory, tmp_path: Path):
    box = sandbox_factory(*WORLD, "--limit", "/friends/ids=3", "--limit", "/2/users/:id/following=3")
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    creds = demo_credentials("demo-user-1", "demo-user-2", "demo-user-3", "demo-app-1")
    for api, endpoint in (("1.1", "/friends/ids"), ("2", "/2/users/:id/following")):
        out = tmp_path / api
        result = run_crawl(box, "friends", out, user_id=seed, depth=2, max_users=30, api=api, credentials=creds)
        assert result.returncode == 0, result.stderr[-2000:]
        expected = box.get(f"/_sandbox/truth/reachable?seeds={seed}&depth=2&direction=friends&max_users=30")["ids"]
        pages = bucket(out, "friend_ids")
        protected = {k for k, v in errors_of(out).items() if v == "protected"}
        assert set(pages) | protected == {str(u) for u in expected}
        for key, lines in pages.items():
            assert ids_of(lines) == box.truth("following", int(key))
        rows = [c for c in box.counters()["limits"] if c["endpoint"] == endpoint]
        assert {c["alias"] for c in rows} == {"demo-user-1", "demo-user-2", "demo-user-3", "demo-app-1"}  # all used
        assert all(c["max_served_in_window"] <= 3 for c in rows)
        assert sum(c["rate_limited"] for c in rows) == 0
        assert "waiting" in result.stderr and "quota" in result.stderr


def test_user_only_endpoint_never_gets_an_app_lane():
    """liking_users / liked_tweets answer a bearer token with 403: only user-context lanes may call them,
    even with TWEETFORM_APP_LANES_FOR_USERS; with only app credentials there is no lane at all."""
    liking = ENDPOINTS["/2/tweets/:id/liking_users"]
    book, _ = make_book(2, apps=1)
    book.pool.app_lanes_for_users = True
    assert {lane.kind for lane in book.pool.lanes(liking)} == {"user"}
    apps_only, _ = make_book(0, apps=2)
    assert not apps_only.has_lanes(liking) and apps_only.has_lanes(ENDPOINTS["/2/tweets/:id/retweeted_by"])
