"""A worker's calls whose answer nothing waits for ride its next round trip (tweetform/state/redis/outbox.py), in order.

One worker's real components in this process (scheduler, queue, quota book, bucket pipeline, cost middleware) on a
real Redis, whose slow log (every command logged, in the order Redis ran them) says what ran before what."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Iterator

import pytest
import redis
from scrapy import Request, Spider
from scrapy.http import TextResponse

from crawling import demo_credentials, unit_crawler
from cutting_proxy import CuttingProxy
from scheduled import ENDPOINT, push_friends_ids, take
from slowlog import logging_every_command, scripts_run
from tweetform.cost.middleware import CostMiddleware
from tweetform.items import make_page, page_id
from tweetform.meta import META_DELIVERY, META_QID
from tweetform.pipelines.buckets import BucketPipeline, _digest
from tweetform.quota.gate import reservation_of
from tweetform.state import book as book_of
from tweetform.state.redis import compact, keys, outbox, scripts
from tweetform.state.redis.queue import split_member
from tweetform.state.redis.scheduler import RedisScheduler
from tweetform.crawler_state import state_of


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()  # not left to the garbage collector (an unclosed socket's ResourceWarning is an error)


@pytest.fixture
def logged(r: redis.Redis) -> Iterator[redis.Redis]:
    """The test's Redis with every command in its slow log (tests/slowlog.py)."""
    yield from logging_every_command(r)


class Worker:
    def __init__(self, redis_url: str, output: Path, r: redis.Redis) -> None:
        self.crawler = unit_crawler(Spider, {"REDIS_URL": redis_url, "TWEETFORM_OUTPUT_DIR": str(output),
                                             "TWEETFORM_CREDENTIALS": demo_credentials("demo-app-1")})
        self.crawler.stats.open_spider()
        self.spider = Spider.from_crawler(self.crawler, name="outboxed")
        self.scheduler = RedisScheduler.from_crawler(self.crawler)
        self.scheduler.open(self.spider)
        self.pipeline = BucketPipeline.from_crawler(self.crawler)
        self.book = book_of(self.crawler)
        self.cost = CostMiddleware.from_crawler(self.crawler)
        r.hset(keys.job("j"), "state", "running")

    def close(self) -> None:
        state_of(self.crawler).redis.close()

    def trips(self) -> int:
        return state_of(self.crawler).redis_round_trips[0]

    def push(self, *ns: int) -> None:
        push_friends_ids(self.scheduler, *ns)

    def take(self) -> Request:
        return take(self.scheduler)

    def answer(self, request: Request, remaining: int) -> None:
        """What the API-error middleware does with the answer's quota headers."""
        self.book.answered(reservation_of(request), 200, {"x-rate-limit-limit": "15", "x-rate-limit-remaining": str(remaining),
                                                          "x-rate-limit-reset": "9999999999"})

    def write(self, request: Request) -> Any:
        prov = {"url": request.url, "bucket": "friend_ids", "key": "12", "job": "j",
                "page_id": page_id("j", "friend_ids", "12", request.url)}
        return self.pipeline.process_item(make_page({"ids": [1, 2]}, b'{"ids":[1,2]}', prov))

    def scrape(self, request: Request, ids: list[int]) -> None:
        """The callback's output (a friends/ids page of ``ids``) through the cost middleware, as the scraper consumes it."""
        prov = {"url": request.url, "bucket": "friend_ids", "key": "12", "job": "j", "credential": "demo-app-1",
                "endpoint": ENDPOINT, "page_id": page_id("j", "friend_ids", "12", request.url)}
        response = TextResponse(request.url, body=b"{}", request=request, headers={"Date": "Sun, 06 Dec 2026 12:00:00 GMT"})
        page = make_page({"ids": ids}, None, prov)
        assert list(self.cost.process_spider_output(response, [page])) == [page]

    def usd(self) -> float:
        return self.crawler.stats.get_value("tweetform/cost/usd", 0)

    def ack(self, request: Request) -> None:
        """What the scheduler does once the scraper is done with the request (AckAfterScraping), and its sync when no
        pop follows within SEND_DELAY (scheduler.py)."""
        self.scheduler.ack_done([request])
        self.scheduler.sync()


@pytest.fixture
def worker(logged: redis.Redis, redis_url: str, tmp_path: Path) -> Iterator[Worker]:
    made = Worker(redis_url, tmp_path, logged)
    yield made
    made.close()


def known(r: redis.Redis, url: str) -> bool:
    """Whether Redis has the page recorded written (the test's own call: out of the slow log)."""
    layout = keys.written("j")
    pid = page_id("j", "friend_ids", "12", url)
    found = scripts.execute(r, lambda pipe: scripts.in_pipeline(pipe, scripts.load(r, "page_known"), [layout],
                                                               [compact.bucket_prefix(layout), _digest(pid)]))[0]
    r.slowlog_reset()
    return bool(found)


def test_a_pages_record_and_its_quota_answer_ride_the_next_round_trips_before_the_ack_and_the_next_pop(logged, worker, tmp_path):
    worker.push(1, 2, 3)
    first = worker.take()
    worker.answer(first, 14)
    scripts_run(logged)
    worker.write(first)
    assert (tmp_path / "friend_ids" / "12.jsonl").read_bytes().count(b"\n") == 1
    # the answer went first in the written-pages check's round trip; the record waits for the next one
    assert scripts_run(logged) == ["quota_answered", "page_known"]
    assert not known(logged, first.url)

    trips = worker.trips()
    worker.ack(first)
    assert scripts_run(logged) == ["page_written", "queue_ack"]  # the record before the ack that ends the request
    assert worker.trips() == trips + 1  # in one round trip
    assert known(logged, first.url) and logged.hget(keys.job_progress("j"), "pages") == b"1"

    second = worker.take()
    worker.answer(second, 13)
    scripts_run(logged)
    trips = worker.trips()
    worker.take()
    # the answer settled before the pop that may take its lane again, in the pop's round trip
    assert scripts_run(logged) == ["quota_answered", "queue_pop"] and worker.trips() == trips + 1
    settled = reservation_of(second)
    assert logged.zscore(keys.quota(settled.lane.name, settled.endpoint) + ":inflight", settled.rid) is None

    trips = worker.trips()
    worker.write(second)
    worker.ack(second)
    assert scripts_run(logged) == ["page_known", "page_written", "queue_ack"] and worker.trips() == trips + 2


def test_the_outboxs_own_round_trip_carries_the_acknowledgements_and_requests_waiting_for_the_next_pop(logged, worker):
    """No pop comes for a while (all download slots busy): the outbox's timer sends the page's record alone and the
    scheduler's sends the page's new request and its acknowledgement a moment later, two wake-ups of Redis. Whichever
    fires first carries both: record, push, acknowledgement, in that order, one round trip."""
    worker.push(1, 2)
    page = worker.take()
    worker.answer(page, 14)
    scripts_run(logged)
    worker.write(page)  # the record waits in the outbox
    worker.scheduler.enqueue_request(request_to("/followers/ids", 11))
    worker.scheduler.ack_done([page])
    scripts_run(logged)
    trips = worker.trips()
    worker.scheduler.queue.outbox.flush()  # what its timer runs
    assert scripts_run(logged) == ["page_written", "queue_push"]
    assert worker.trips() == trips + 1
    assert in_flight(logged) == [] and worker.scheduler.queue.unsent == [] and worker.scheduler.queue.unacked == {}
    assert logged.hget(keys.job_progress("j"), "pages") == b"1"


def request_to(endpoint: str, n: int, job: str = "j") -> Request:
    return Request(f"https://api.test{endpoint}?n={n}", meta={"tweetform_endpoint": endpoint, "tweetform_ctx": {"job": job}})


def in_flight(r: redis.Redis) -> list[str]:
    """The urls of the requests in flight (each entry holds its queue member: job, id and the request's JSON)."""
    return sorted(json.loads(split_member(json.loads(entry)["d"])[2])["url"] for entry in r.hvals(keys.in_flight("outboxed")))


def test_a_pop_sends_the_pages_new_requests_and_its_acknowledgement_first_in_its_own_round_trip(logged, worker):
    """What a callback yielded and its request's acknowledgement go in the next pop's round trip, before the pop, in
    that order (after the outbox's calls): Redis queues the new requests before the acknowledgement (which can end
    the job) and before the pop, which may take one of them, even from an endpoint this worker had no queue of.
    Before, the pop's sync was a round trip of its own: two round trips (two wake-ups of an idle Redis) instead of one."""
    worker.push(1, 2)
    pages = []
    for remaining in (14, 13):  # /friends/ids is empty after
        pages.append(worker.take())
        worker.answer(pages[-1], remaining)
    for request in pages:
        worker.scheduler.enqueue_request(request_to("/followers/ids", int(request.url[-1]) + 10))
    worker.scheduler.ack_done(pages)
    scripts_run(logged)
    trips = worker.trips()
    found = worker.take()
    assert scripts_run(logged) == ["quota_answered", "queue_push", "queue_pop"]
    assert worker.trips() == trips + 1
    assert found.url == "https://api.test/followers/ids?n=11"  # pushed and taken in the same round trip
    assert in_flight(logged) == [found.url] and worker.scheduler.queue.unsent == [] and worker.scheduler.queue.unacked == {}

    worker.answer(found, 14)
    worker.ack(found)  # acknowledged alone (the scheduler's sync when no pop follows within SEND_DELAY)
    worker.push(3)
    following = worker.take()
    worker.answer(following, 13)
    worker.scheduler.ack_done([following])
    scripts_run(logged)
    trips = worker.trips()
    last = worker.take()
    assert scripts_run(logged) == ["quota_answered", "queue_ack", "queue_pop"]  # acknowledgements alone too
    assert worker.trips() == trips + 1
    assert {following.url, last.url} == {"https://api.test/followers/ids?n=12", "https://api.test/friends/ids?n=3"}
    assert in_flight(logged) == [last.url] and worker.scheduler.queue.unacked == {}


def test_a_push_redis_refuses_in_the_pops_round_trip_is_kept_and_the_popped_request_is_the_workers(logged, worker, caplog):
    """Redis answers the push riding a pop with an error (here the new request's job's dupe-filter layout is not a
    hash): the pop after it still ran, so its request is handed to the worker (dropped, it would sit in flight
    under this worker until it stopped); the refused request stays buffered and goes with the next round trip, and
    its page's acknowledgement after it."""
    worker.push(1, 2)
    page = worker.take()
    worker.answer(page, 14)
    logged.hset(keys.job("k"), "state", "running")
    logged.set(keys.dupefilter("outboxed", "k"), "not a hash")
    worker.scheduler.enqueue_request(request_to(ENDPOINT, 3, job="k"))
    worker.scheduler.ack_done([page])
    scripts_run(logged)
    trips = worker.trips()
    taken = worker.take()
    assert scripts_run(logged) == ["quota_answered", "queue_push", "queue_pop"]
    assert worker.trips() == trips + 1
    assert taken.url == "https://api.test/friends/ids?n=2"
    assert "could not queue 1 requests (Redis refused a command: WRONGTYPE" in caplog.text
    assert len(worker.scheduler.queue.unsent) == 1 and list(worker.scheduler.queue.unacked) == [page.meta[META_QID]]
    assert in_flight(logged) == sorted([page.url, taken.url])  # nor did Redis run the page's acknowledgement

    logged.delete(keys.dupefilter("outboxed", "k"))
    worker.answer(taken, 13)
    worker.scheduler.ack_done([taken])
    scripts_run(logged)
    again = worker.take()  # the kept request, pushed and taken in one round trip
    assert scripts_run(logged) == ["quota_answered", "queue_push", "queue_pop"]
    assert again.url == "https://api.test/friends/ids?n=3"
    assert in_flight(logged) == [again.url] and worker.scheduler.queue.unsent == [] and worker.scheduler.queue.unacked == {}


def test_a_page_whose_new_requests_redis_refuses_for_memory_stays_in_flight_until_they_are_queued(logged, worker, caplog):
    """Redis out of memory (maxmemory reached, noeviction) refuses a script's first write that may grow memory, not
    a delete: when a page's new requests (the push) and its acknowledgement were two scripts in the pop's round trip,
    Redis refused the push and ran the acknowledgement: the page left in-flight, and its job, nothing else of it
    queued, ended done while the new request was only in this worker's memory (a worker killed then lost it; pushed
    once Redis had memory again, the pop dropped it: a done job's). The push now acknowledges once it has queued:
    refused together, sent again together."""
    worker.push(1, 3)
    page = worker.take()
    worker.answer(page, 14)
    worker.scheduler.enqueue_request(request_to(ENDPOINT, 2))
    worker.scheduler.ack_done([page])
    before = logged.config_get("maxmemory*")
    logged.config_set("maxmemory-policy", "noeviction")
    logged.config_set("maxmemory", 1)
    try:
        other = worker.take()  # the pop only deletes before its writes: Redis runs it
    finally:
        for name, value in before.items():
            logged.config_set(name, value)
    assert other.url == "https://api.test/friends/ids?n=3"
    assert "could not queue 1 requests (Redis maxmemory reached" in caplog.text
    assert in_flight(logged) == sorted([page.url, other.url]) and logged.hget(keys.job("j"), "state") == b"running"
    assert list(worker.scheduler.queue.unacked) == [page.meta[META_QID]] and len(worker.scheduler.queue.unsent) == 1

    worker.answer(other, 13)
    child = worker.take()  # the kept request, pushed with the page's acknowledgement, and taken
    assert child.url == "https://api.test/friends/ids?n=2"
    assert in_flight(logged) == sorted([other.url, child.url]) and logged.hget(keys.job("j"), "state") == b"running"
    assert worker.scheduler.queue.unsent == [] and worker.scheduler.queue.unacked == {}


def test_a_429_answer_goes_at_once_other_workers_must_not_pop_into_a_refused_lane(logged, worker):
    worker.push(1, 2)
    request = worker.take()
    scripts_run(logged)
    trips = worker.trips()
    worker.book.answered(reservation_of(request), 429, {"x-rate-limit-limit": "15", "x-rate-limit-remaining": "0",
                                                        "x-rate-limit-reset": "9999999999"})
    assert scripts_run(logged) == ["quota_answered"] and worker.trips() == trips + 1  # its own round trip, now
    lane = reservation_of(request).lane
    assert logged.hget(keys.quota(lane.name, ENDPOINT), "srem") == b"0"  # the lane is spent for everyone


def test_what_waits_is_sent_when_the_scheduler_closes_and_later_calls_go_at_once(logged, worker):
    worker.push(1)
    request = worker.take()
    worker.write(request)
    scripts_run(logged)
    worker.scheduler.close("finished")  # the page's request was not acknowledged: its record goes before the reap
    assert scripts_run(logged)[:2] == ["page_written", "queue_reap"]
    assert known(logged, request.url)
    again = Request("https://api.test/friends/ids?n=9")
    worker.write(again)  # closed: recorded at once
    assert scripts_run(logged) == ["page_known", "page_written"]
    assert known(logged, again.url)


def test_redis_away_each_waiting_call_fails_as_alone_and_the_round_trip_raises(r):
    box = outbox.Outbox(r)
    box.start()
    lost: list[BaseException] = []
    box.send(scripts.load(r, "page_written"), ["a"], ["b"], lost.append)
    away = redis.Redis(port=1, socket_connect_timeout=0.5)
    with pytest.raises(redis.ConnectionError):
        scripts.execute(away, lambda pipe: pipe.ping(), box)
    away.close()
    assert len(lost) == 1 and isinstance(lost[0], redis.ConnectionError)
    assert box.take() == []  # not sent again: as a call made alone while Redis was away


@pytest.mark.parametrize("loaded", ["the waiting call's script", "the round trip's own script"])
def test_after_redis_lost_its_scripts_only_the_calls_it_refused_run_again(r, loaded):
    """A paced Bluesky answer counts one request served (HINCRBY): run twice it would count two."""
    box = outbox.Outbox(r)
    box.start()
    answered = scripts.load(r, "quota_answered")
    lost: list[BaseException] = []
    box.send(answered, ["q", "q:inflight", "q:paced"], ["rid", 200, "", "", "", 3000, 300], lost.append)
    r.script_flush()
    r.script_load(scripts.source("quota_answered" if loaded.startswith("the waiting") else "page_known"))
    got = scripts.execute(r, lambda pipe: scripts.in_pipeline(pipe, scripts.load(r, "page_known"), ["w"], ["w:", "x"]), box)
    assert got == [0] and lost == []
    assert r.hget("q:paced", "served") == b"1"


def test_a_refused_waiting_call_is_its_own_failure_not_the_round_trips(r):
    r.set("q", "a string, not the lane's hash")
    box = outbox.Outbox(r)
    box.start()
    lost: list[BaseException] = []
    box.send(scripts.load(r, "quota_answered"), ["q", "q:inflight"], ["rid", 200, "15", "14", "99"], lost.append)
    assert scripts.execute(r, lambda pipe: pipe.echo("pop"), box) == [b"pop"]
    assert len(lost) == 1 and isinstance(lost[0], redis.ResponseError)
    with pytest.raises(redis.ResponseError, match="Command # 1"):  # the round trip's own error, numbered in its commands
        scripts.execute(r, lambda pipe: pipe.hget("q", "x"), box)


def test_a_waiting_call_goes_within_the_delay_when_the_worker_sends_nothing_else(r):
    box = outbox.Outbox(r)
    box.start()
    lost: list[BaseException] = []

    async def idle_worker() -> tuple[bool, bool]:
        box.send(scripts.load(r, "quota_answered"), ["q", "q:inflight"], ["rid", 200, "15", "14", "99"], lost.append)
        early = r.exists("q")  # it waits for a round trip
        await asyncio.sleep(outbox.Outbox.DELAY * 2)  # none comes: the timer (the loop runs it before this wakes)
        return bool(early), bool(r.exists("q"))

    assert asyncio.run(idle_worker()) == (False, True) and lost == []
    assert r.hget("q", "srem") == b"14"


def test_a_waiting_call_whose_script_redis_cannot_take_again_is_told_and_the_round_trips_answers_stand(r, redis_url):
    """Redis lost its scripts (a restart) and the reload fails (the link dropping again; here an ACL forbids
    SCRIPT LOAD): the round trip's own commands were answered (a pop's request is this worker's now), so it returns
    them; the waiting call Redis refused with NOSCRIPT is told (its warning), not dropped unsaid."""
    r.acl_setuser("outboxed", enabled=True, nopass=True, categories=["+@all"], commands=["-script|load"],
                  keys=["*"], channels=["*"])
    limited = redis.Redis.from_url(redis_url, username="outboxed", password="any")
    try:
        box = outbox.Outbox(limited)
        box.start()
        lost: list[BaseException] = []
        box.send(scripts.load(limited, "quota_answered"), ["q", "q:inflight"], ["rid", 200, "15", "14", "99"], lost.append)
        r.script_flush()
        assert scripts.execute(limited, lambda pipe: pipe.echo("pop"), box) == [b"pop"]
        assert len(lost) == 1 and isinstance(lost[0], redis.ResponseError) and not r.exists("q")
        assert box.take() == []
    finally:
        limited.close()
        r.acl_deluser("outboxed")


def billed(r: redis.Redis, day: str = "2026-12-06") -> set[int]:
    """The ids billed to the demo app on ``day`` in Redis's sets (the test's own look: out of the slow log)."""
    layout = keys.cost_seen("demo-app-1", "follow", day)
    found = {int(m) for b in compact.bucket_keys(r, layout) for m in r.smembers(b)} - {0}
    r.slowlog_reset()
    return found


def test_a_pages_billed_ids_ride_its_acknowledgement_and_its_cost_is_charged_when_redis_answers(logged, worker):
    """At 16 pages/s each round trip wakes a cold Redis: the billed-ids call is no round trip of its own; it goes
    before the acknowledgement that may end the job, in the same round trip, and the page is charged then."""
    worker.push(1, 2)
    first = worker.take()
    worker.answer(first, 14)
    scripts_run(logged)
    trips = worker.trips()
    worker.scrape(first, [101, 102, 103])
    assert worker.trips() == trips and scripts_run(logged) == []  # nothing sent while the callback's output passes
    assert worker.usd() == 0  # not charged yet: Redis has not said which ids are new today
    worker.ack(first)
    assert scripts_run(logged) == ["quota_answered", "cost_seen", "queue_ack"] and worker.trips() == trips + 1
    assert worker.usd() == pytest.approx(0.03) and worker.cost.ledger.by_job == {"j": 30_000}
    assert billed(logged) == {101, 102, 103}

    second = worker.take()
    worker.answer(second, 13)
    scripts_run(logged)
    trips = worker.trips()
    worker.scrape(second, [102, 103])  # every id known billed today: charged 0 at once, nothing to ask
    worker.ack(second)
    assert scripts_run(logged) == ["quota_answered", "queue_ack"] and worker.trips() == trips + 1
    assert worker.usd() == pytest.approx(0.03) and worker.crawler.stats.get_value("tweetform/cost/resources/follow") == 3


def test_a_billed_ids_call_that_meets_redis_away_is_sent_again_and_charged_once(tmp_path):
    """Redis stops while a page's billed-ids call waits for the acknowledgement's round trip: the page keeps its
    charge, asked again with the next round trip once Redis is back, and charged once; ids are remembered billed
    only once Redis answered (a later page of the same ids is charged nothing)."""
    from tweetform.testing.servers import RedisServer

    server = RedisServer(appendonly=True)
    worker = None
    try:
        worker = Worker(server.url, tmp_path, server.client)
        worker.push(1)
        first = worker.take()
        worker.answer(first, 14)
        server.stop_process()
        worker.scrape(first, [201, 202])  # nothing sent: it waits in the outbox
        with pytest.raises(redis.ConnectionError):  # the scheduler's caller waits for Redis (scheduler.py)
            worker.ack(first)  # the acknowledgement and the billed ids wait
        assert worker.usd() == 0 and worker.cost.ledger.waiting
        server.start()
        worker.scheduler.sync()  # the next round trip: the acknowledgement, the billed ids again
        assert worker.usd() == pytest.approx(0.02) and not worker.cost.ledger.waiting
        assert billed(server.client) == {201, 202} and server.client.hget(keys.job_progress("j"), "pages") is None
        worker.scrape(first, [201, 202, 203])  # the same ids again in a later page (an answer served twice)
        worker.scheduler.queue.outbox.flush()  # the worker's next round trip
        assert worker.usd() == pytest.approx(0.03) and worker.cost.ledger.by_app == {"demo-app-1": 30_000}
        assert billed(server.client) == {201, 202, 203}
    finally:
        if worker is not None:
            worker.close()
        server.stop()


@pytest.fixture
def cut_after(redis_server: Any, redis_url: str) -> Iterator[Any]:
    """``cut_after(script, skip=0)``: a proxy process in front of the test's Redis that cuts the connection once, after
    the first request calling ``script`` (after ``skip`` others) reached Redis and before its answer comes back
    (tests/cutting_proxy.py)."""
    started: list[CuttingProxy] = []

    def start(script: str, skip: int = 0) -> CuttingProxy:
        started.append(CuttingProxy(redis_server.port, scripts.load(redis.Redis(), script).sha, skip))
        return started[-1]

    yield start
    for proxy in started:
        proxy.stop()


def test_a_billed_ids_call_whose_answer_the_link_lost_is_charged_at_least_what_redis_billed(r, cut_after, tmp_path):
    """The link to Redis breaks after the round trip with a page's billed-ids call was written, before its answer
    came back: the call ran (Redis billed the ids), so the worker must not take the answer of the call sent again
    (none of them new) for the page's cost: the page's budget settles it at least at what Redis billed. redis-py's
    own retry (it sent the round trip again by itself on a new connection) hid the lost answer: the page cost $0."""
    proxy = cut_after("cost_seen")
    worker = Worker(proxy.url, tmp_path, r)
    try:
        worker.push(1)
        first = worker.take()
        told: list[tuple[int, int]] = []
        worker.cost.ledger.charge_later("j", "demo-app-1", "2026-12-06", [("follow", ["201", "202"])],
                                        lambda *got: told.append(got))
        lost = None
        try:
            worker.ack(first)  # the acknowledgement's round trip carries the billed-ids call
        except redis.ConnectionError as exc:
            lost = exc  # the scheduler's caller waits for Redis (scheduler.py)
        assert proxy.cut()
        worker.scheduler.sync()  # the worker's next round trip
        assert billed(r) == {201, 202}
        assert len(told) == 1 and sum(told[0]) >= 2 * 10_000  # cost + the most it may have cost beyond: both ids
        assert lost is not None and not worker.cost.ledger.waiting
    finally:
        worker.close()


def test_a_pop_whose_answer_the_link_lost_leaves_its_request_to_be_put_back_and_taken_once(r, cut_after, tmp_path):
    """The link breaks after a pop reached Redis, before its answer came back: Redis moved the request into this
    worker's in-flight hash, which the worker does not know. It is not lost: the heartbeat's reclaim (``reclaim_lost``,
    here without its 5 s wait) puts it back, and the worker takes each request once."""
    proxy = cut_after("queue_pop", skip=1)
    worker = Worker(proxy.url, tmp_path, r)
    try:
        worker.push(1, 2, 3)
        first = worker.take()
        worker.answer(first, 14)  # the lane's quota known from its answer on: a pop needs no answer before the next
        taken = [first.url]
        got = worker.scheduler.next_request()  # the pop's answer is lost: the scheduler waits for Redis (None)
        assert proxy.cut()
        if got is not None:
            taken.append(got.url)
        assert len(in_flight(r)) == 1 + len(taken)
        assert worker.scheduler.queue.reclaim_lost(min_age=0) == 1
        while len(taken) < 3:
            taken.append(worker.take().url)
        assert not worker.scheduler.queue  # nothing left to take twice
        assert sorted(taken) == [f"https://api.test/friends/ids?n={n}" for n in (1, 2, 3)]
        assert in_flight(r) == sorted(taken)
    finally:
        worker.close()


def test_a_connection_redis_closed_while_idle_is_dialled_anew_before_a_command_goes(r, worker):
    """Without redis-py's own retries, a connection Redis closed (a restart, an idle timeout, here CLIENT KILL) is
    still no error: the pool sees it closed before it hands it out, and dials anew; nothing is sent twice."""
    worker.push(1, 2)
    first = worker.take()
    worker.answer(first, 14)
    assert r.client_kill_filter(_type="normal", skipme=True) >= 1  # the worker's connection among them
    assert worker.take().url != first.url
    assert len(in_flight(r)) == 2


def test_a_page_redis_never_answers_for_is_said_at_close_and_given_up_at_the_most_it_may_cost(logged, worker, caplog):
    """Redis refuses the billed-ids call every time (here the day's set is a string): it is sent again with each
    round trip; at close the page is given up in one line, at the most it may have cost (what its budget
    reservation is settled at: a lost answer never lets a budget be overrun); the stats leave it out."""
    logged.set(keys.cost_seen("demo-app-1", "follow", "2026-12-06"), "not the day's layout")
    worker.push(1)
    request = worker.take()
    worker.answer(request, 14)
    worker.scrape(request, [301, 302])
    worker.ack(request)
    worker.scheduler.queue.outbox.flush()  # the worker's next round trip (here the outbox's timer)
    assert scripts_run(logged).count("cost_seen") == 2  # with the acknowledgement, then again with the next round trip
    assert len(worker.cost.ledger.waiting) == 1
    told: list[tuple[int, int]] = []
    worker.cost.ledger.charge_later("j", "demo-app-1", "2026-12-06", [("follow", ["303"])], lambda *got: told.append(got))
    worker.scheduler.close("finished")  # the scheduler's last round trips: refused again
    worker.cost.finish()  # BudgetMiddleware.spider_closed calls it before it releases what is still reserved
    assert told == [(0, 10_000)] and not worker.cost.ledger.waiting and worker.usd() == 0
    lines = [r.getMessage() for r in caplog.records if "could not be billed" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("2 page(s) could not be billed") and "$0.03" in lines[0]
    assert [r.getMessage() for r in caplog.records].count(
        "Redis did not answer which resource ids are billed (ResponseError): the pages' cost is asked again with a "
        "later round trip") == 1


def test_a_lookup_split_near_the_budget_keeps_both_parts_whatever_round_trip_comes_between_them(worker, logged):
    """Near the end of a budget a look-up is split (BudgetMiddleware._split): the ids that fit go now, the others in a
    request queued at once (engine.crawl); the part for now is the request the middleware returns, which Scrapy
    schedules again too. Both parts carried the popped request's id and lease, so each was pushed as its retry: the
    first to reach Redis took the request's place in flight, and a round trip between them (a pop, the heartbeat's
    sync) left the other's lease check nothing to find: refused, its ids never fetched. Only the part for now is the
    request's retry; the rest is a new request."""
    from types import SimpleNamespace

    from tweetform.cost.budget import BudgetMiddleware

    params = {"ids": "1,2,3,4"}
    ctx = {"job": "j", "params": params, "target": "1,2,3,4"}
    worker.scheduler.enqueue_request(Request("https://api.test/2/users?ids=1,2,3,4",
                                             meta={"tweetform_endpoint": "/2/users", "tweetform_ctx": ctx}))
    worker.scheduler.sync()
    request = worker.take()
    budget = BudgetMiddleware(worker.crawler)
    budget.api_base = "https://api.test"  # TWEETFORM_API_BASE (the worker's crawler does not set it)
    worker.crawler.engine = SimpleNamespace(crawl=worker.scheduler.enqueue_request)  # what Engine.crawl does with it
    now = budget._split(request, "/2/users", params, ctx, 2)
    worker.scheduler.sync()  # a round trip between the two parts
    worker.scheduler.enqueue_request(now)  # Scrapy schedules the request process_request returned
    worker.scheduler.sync()
    queued = sorted(json.loads(p)["url"] for m in logged.zrange(keys.queue("outboxed", "/2/users"), 0, -1)
                    for p in split_member(m.decode())[2].split("\n"))
    assert queued == ["https://api.test/2/users?ids=1,2", "https://api.test/2/users?ids=3,4"]
    assert logged.hlen(keys.in_flight("outboxed")) == 0
    assert [int(x) for x in logged.hmget(keys.job("j"), "queued", "inflight")] == [2, 0]


def _split_lookup(worker: Any, logged: redis.Redis) -> tuple[Request, Request]:
    """A look-up of ids 1..4 taken from the queue and split near the end of its budget: (the part for now, the popped
    request); the rest is queued at once (engine.crawl: the scheduler's enqueue_request)."""
    from types import SimpleNamespace

    from tweetform.cost.budget import BudgetMiddleware

    params = {"ids": "1,2,3,4"}
    ctx = {"job": "j", "params": params, "target": "1,2,3,4"}
    logged.hset(keys.job("j"), "run", logged.info("server")["run_id"])  # begun under this redis-server: first deliveries
    worker.scheduler.enqueue_request(Request("https://api.test/2/users?ids=1,2,3,4",
                                             meta={"tweetform_endpoint": "/2/users", "tweetform_ctx": ctx}))
    worker.scheduler.sync()
    request = worker.take()
    assert request.meta[META_DELIVERY].first  # what the later part must not inherit
    worker.answer(request, 14)  # quota left: the next pop takes at once
    budget = BudgetMiddleware(worker.crawler)
    budget.api_base = "https://api.test"
    worker.crawler.engine = SimpleNamespace(crawl=worker.scheduler.enqueue_request)
    return budget._split(request, "/2/users", params, ctx, 2), request


def test_a_lookup_splits_later_part_is_never_taken_as_a_first_delivery(worker, logged):
    """The part of a split look-up queued at once is a new request, but a copy of one another worker may hold too
    (a stalled holder's split, a push sent again after its answer was lost): its pop must not say first delivery,
    or its page is written without asking Redis whether another worker wrote it."""
    now, _ = _split_lookup(worker, logged)
    worker.scheduler.enqueue_request(now)
    worker.scheduler.sync()
    later = worker.take()  # queued first (the popped request's retry, ids 1,2, after it: never a first delivery)
    assert later.url == "https://api.test/2/users?ids=3,4" and later.meta[META_DELIVERY].first is False


def test_a_lookup_split_by_a_worker_whose_lease_was_handed_over_queues_no_part(worker, logged):
    """A stalled worker splits a look-up it no longer holds (its lease reaped, the request handed to another worker,
    which fetches or splits it itself): neither part is queued, as its retry would not be (the ids are not asked twice)."""
    now, request = _split_lookup(worker, logged)
    qid = request.meta[META_QID]
    entry = json.loads(logged.hget(keys.in_flight("outboxed"), qid))
    logged.hset(keys.in_flight("outboxed"), qid, json.dumps({**entry, "l": "another-workers-lease"}))
    worker.scheduler.enqueue_request(now)
    worker.scheduler.sync()
    assert logged.zcard(keys.queue("outboxed", "/2/users")) == 0
