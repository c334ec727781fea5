"""A worker asks Redis whether another worker wrote a page (page_known.lua) only when another can have fetched it.

A request pushed once and taken once, by this worker, under a lease it held without a break since the pop, has pages
only this worker can write: its file's own index keeps them single. Any other request — handed over from a dead
worker, released by a stopping one, reclaimed, retried — or a lease this worker cannot prove unbroken (a stall past
its heartbeat TTL, a new connection to Redis): asked, as before.

In-process: one or two workers' real components (scheduler, queue, heartbeat, spider, bucket pipeline) on a real
Redis, whose slow log (every command logged, in order) says which scripts ran. Then real worker processes on the
sandbox, each host with its own output directory (where only Redis can tell what another host wrote)."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import redis
from scrapy import Request
from scrapy.http import Response

from crawling import bucket, demo_credentials, errors_of, ids_of, unit_crawler
from scheduled import ENDPOINT, push_friends_ids, take
from slowlog import logging_every_command, scripts_run
from test_distributed import (WORLD, no_process_left_behind, push, start_workers, wait_all,  # noqa: F401 (fixture)
                              worker_env)
from tweetform.items import make_page, page_id
from tweetform.job import JobArgs
from tweetform.meta import META_DELIVERY
from tweetform.pipelines.buckets import BucketPipeline
from tweetform.quota.gate import reservation_of
from tweetform.state import book
from tweetform.spiders.network import FriendsSpider
from tweetform.state.redis import keys
from tweetform.state.redis.connection import connects
from tweetform.state.redis.node import Delivery, Lease, WorkerNode
from tweetform.state.redis.scheduler import RedisScheduler
from tweetform.testing.servers import RedisServer
from tweetform.crawler_state import state_of


# --- the lease's arithmetic -------------------------------------------------------------------------------------

def test_a_lease_is_proven_from_the_first_beat_of_an_unbroken_stretch_until_the_last_beats_ttl_less_a_margin():
    lease = Lease(10.0)  # margin 2 s
    assert not lease.held_since(0.0, now=0.0)  # no beat yet
    lease.beaten(100.0, 100.1)
    lease.beaten(102.0, 102.1)  # answered long before 100 + 10: the key never lapsed
    assert lease.held_since(100.1, now=109.9) and not lease.held_since(100.0, now=101.0)  # set at its reply, not before
    assert not lease.held_since(100.1, now=110.0)  # 102 + 10 - 2: too close to the key's end
    lease.beaten(112.0, 112.2)  # answered after 102 + 10: the key may have expired meanwhile
    assert lease.since == 112.2 and not lease.held_since(101.0, now=113.0) and lease.held_since(112.5, now=113.0)
    lease.release()  # the worker handed its requests back
    lease.beaten(113.0, 113.1)
    assert not lease.held_since(112.5, now=113.2)


def test_only_a_first_delivery_neither_given_back_nor_behind_a_new_connection_is_proven():
    lease = Lease(10.0)
    lease.beaten(100.0, 100.1)
    now = time.monotonic()
    lease.beaten(now, now)
    assert lease.since == now  # a long gap: a stretch from now
    first = Delivery(first=True, sent=now + 0.01, connects=1)
    assert lease.proves_only_writer(first, 1)
    assert not lease.proves_only_writer(first, 2)  # a new connection: Redis may have come back with older data
    assert not lease.proves_only_writer(None, 1)  # not known (not a page of a callback of this worker's pop)
    assert not lease.proves_only_writer(Delivery(first=False, sent=now + 0.01, connects=1), 1)
    assert not lease.proves_only_writer(Delivery(first=True, sent=now - 1, connects=1), 1)  # popped before the stretch
    first.retried = True
    assert not lease.proves_only_writer(first, 1)


# --- one worker's components in this process ---------------------------------------------------------------------

@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    """The test's Redis with every command in its slow log (tests/slowlog.py)."""
    client = redis.Redis.from_url(redis_url)
    yield from logging_every_command(client)
    client.close()


class Worker:
    """A worker's real parts: scheduler and queue, heartbeat (WorkerNode.beat), spider, bucket pipeline."""

    def __init__(self, redis_url: str, output: Path, r: redis.Redis, ttl: float = 10.0) -> None:
        self.crawler = unit_crawler(FriendsSpider, {"REDIS_URL": redis_url, "TWEETFORM_OUTPUT_DIR": str(output),
                                                    "TWEETFORM_API_BASE": "http://api.test", "TWEETFORM_HEARTBEAT_TTL": ttl,
                                                    "TWEETFORM_CREDENTIALS": demo_credentials("demo-app-1")})
        self.crawler.stats.open_spider()
        self.spider = FriendsSpider.from_crawler(self.crawler)
        self.spider.finished = lambda request: None  # no engine here: the test acknowledges (ack) as the scheduler would
        self.scheduler = RedisScheduler.from_crawler(self.crawler)
        self.scheduler.open(self.spider)
        self.pipeline = BucketPipeline.from_crawler(self.crawler)
        self.node = WorkerNode(self.crawler)
        self.output = output
        self.spider.store.save(JobArgs(spider="friends", job="j", api="2", bucket="friend_ids", user_ids=[1]))

    def close(self) -> None:
        self.pipeline.close_spider()
        state_of(self.crawler).redis.close()

    def push(self, *ns: int) -> None:
        push_friends_ids(self.scheduler, *ns)

    def take(self) -> Request:
        """The next request, its answer's quota headers handled (as the API-error middleware does: the lane's limit
        known, another worker may take a request of it)."""
        request = take(self.scheduler)
        book(self.crawler).answered(reservation_of(request), 200, {"x-rate-limit-limit": "15", "x-rate-limit-remaining": "14",
                                                                   "x-rate-limit-reset": "9999999999"})
        return request

    def write(self, request: Request) -> Any:
        """The request's page as its callback yields it, through the spider's wrapper of every callback, then the
        pipeline."""
        page = make_page({"ids": [1, 2]}, b'{"ids":[1,2]}', {"url": request.url, "bucket": "friend_ids", "key": "12", "job": "j",
                                                              "page_id": page_id("j", "friend_ids", "12", request.url)})
        out = list(self.spider._shared_state_safe(Response(request.url, request=request), lambda response: iter([page])))
        assert out == [page]
        return self.pipeline.process_item(page)

    def ack(self, request: Request) -> None:
        self.scheduler.ack_done([request])
        self.scheduler.sync()

    def lines(self) -> int:
        path = self.output / "friend_ids" / "12.jsonl"
        return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.fixture
def workers(r: redis.Redis, redis_url: str, tmp_path: Path) -> Iterator[Any]:
    made: list[Worker] = []

    def make(name: str, ttl: float = 10.0) -> Worker:
        made.append(Worker(redis_url, tmp_path / name, r, ttl))
        return made[-1]

    yield make
    for w in made:
        w.close()


def two_beating_one_taken(workers: Any) -> tuple[Worker, Worker, Request]:
    """Workers a and b, each with its heartbeat set, and the request a took of the one it pushed."""
    a, b = workers("a"), workers("b")
    a.node.refresh_heartbeat()
    b.node.refresh_heartbeat()
    a.push(1)
    return a, b, a.take()


def test_a_first_delivery_under_an_unbroken_lease_is_written_without_asking_redis(r, workers):
    """Before: every page cost a page_known call of its own (a round trip, ~1 a page)."""
    a = workers("a")
    a.node.refresh_heartbeat()
    a.push(1)
    request = a.take()
    assert request.meta[META_DELIVERY].first
    scripts_run(r)
    assert not a.write(request).skipped and a.lines() == 1
    assert scripts_run(r) == []  # nothing asked (the quota answer and the record wait for the next round trip)
    a.ack(request)
    ran = scripts_run(r)
    assert "page_written" in ran and "page_known" not in ran
    assert a.crawler.stats.get_value("tweetform/pages/written_check_skipped") == 1


def test_a_request_a_dead_worker_held_is_checked_and_its_written_page_not_written_again(r, workers):
    """A worker (its own output directory) wrote the page and recorded it, then died before its ack: the request is
    handed over; its next taker asks Redis and writes nothing (its directory would hold the page a second time)."""
    a, b, request = two_beating_one_taken(workers)
    assert not a.write(request).skipped
    a.scheduler.queue.outbox.stop()  # its record goes now (as in any round trip before the death)
    r.delete(keys.heartbeat(a.node.worker))  # a is dead
    assert b.scheduler.queue.reap()[0] == 1
    again = b.take()
    assert not again.meta[META_DELIVERY].first
    scripts_run(r)
    assert b.write(again).skipped and b.lines() == 0
    assert "page_known" in scripts_run(r)


def test_a_request_a_stopping_worker_released_is_checked(r, workers):
    """Released by a worker that stops (queue_reap.lua's own): marked, so its next taker asks. Before: no mark, taken
    for a first delivery, the page written a second time into the taker's directory."""
    a, b, request = two_beating_one_taken(workers)
    assert not a.write(request).skipped
    a.scheduler.close("shutdown")  # not acknowledged (the scraper never finished it): released, its record first
    again = b.take()
    assert again.url == request.url and not again.meta[META_DELIVERY].first
    assert b.write(again).skipped and b.lines() == 0
    assert not a.pipeline.lease.held_since(0.0)  # and a proves nothing any more


def test_a_page_of_a_request_retried_meanwhile_is_checked_on_both_sides(r, workers):
    """The callback's page is handled after the request went back to the queue (its retry: Redis away mid-callback,
    a budget split): another worker may take the retry and write the page first. The retry is marked (its taker
    asks) and the original's late page is checked too. Before: both were taken for first deliveries."""
    a, b, request = two_beating_one_taken(workers)
    a.scheduler.enqueue_request(request.replace(dont_filter=True))  # as _shared_state_safe retries it
    a.scheduler.sync()
    retry = b.take()
    assert retry.url == request.url and not retry.meta[META_DELIVERY].first
    assert not b.write(retry).skipped
    b.ack(retry)
    scripts_run(r)
    assert a.write(request).skipped and a.lines() == 0  # b's copy was recorded: not written again
    assert "page_known" in scripts_run(r)


def test_a_worker_that_cannot_prove_its_lease_since_the_pop_asks(r, workers):
    """No heartbeat answered before the pop (the stretch began after it), a new connection since the pop (Redis may
    have come back older), a lease close to lapsing (no beat for TTL less the margin): each asks."""
    a = workers("a", ttl=1.0)  # margin 0.2 s
    a.push(1, 2, 3)
    first = a.take()
    a.node.refresh_heartbeat()  # the lease begins after the pop
    scripts_run(r)
    a.write(first)
    assert "page_known" in scripts_run(r)

    second = a.take()
    a.scheduler.queue.server.connection_pool.disconnect()
    opened = connects(a.scheduler.queue.server)
    a.node.refresh_heartbeat()  # through a new connection
    assert connects(a.scheduler.queue.server) == opened + 1
    a.write(second)
    assert "page_known" in scripts_run(r)

    third = a.take()
    a.node.refresh_heartbeat()
    time.sleep(0.85)  # the last beat's TTL (1 s) less the margin (0.2 s) is behind
    scripts_run(r)
    a.write(third)
    assert "page_known" in scripts_run(r)
    assert not a.crawler.stats.get_value("tweetform/pages/written_check_skipped")


def test_a_request_back_in_its_queue_after_redis_came_back_older_is_checked(tmp_path):
    """Redis restarted from a snapshot taken after the push, before the pop (a crash losing its last writes): the
    request is queued again though worker a holds it. a, across the restart (a new connection since its pop), asks,
    writes the page and records it; b takes the restored copy: its job began under the Redis process before, so the
    pop says no first delivery, b asks and writes nothing. Before (a first delivery for b, nothing to tell it the pop
    was lost): the page in both directories."""
    server = RedisServer()
    r = redis.Redis.from_url(server.url)
    made: list[Worker] = []
    try:
        a, b = (made.append(Worker(server.url, tmp_path / name, r)) or made[-1] for name in ("a", "b"))
        a.node.refresh_heartbeat()
        a.push(1)
        server.client.save()  # what Redis comes back with: the request queued
        request = a.take()
        assert request.meta[META_DELIVERY].first
        server.restart(down_for=0)
        assert not a.write(request).skipped and a.lines() == 1
        a.ack(request)  # its record goes (the ack finds no in-flight entry: the restored Redis never saw the pop)
        b.node.refresh_heartbeat()
        again = b.take()
        assert again.url == request.url and not again.meta[META_DELIVERY].first
        assert b.write(again).skipped and b.lines() == 0
    finally:
        for w in made:
            w.close()
        r.close()
        server.stop()


def test_a_redis_that_may_evict_keys_proves_no_first_delivery(r, workers):
    """A Redis whose maxmemory-policy evicts keys (volatile-lru is managed Redis services' default) drops keys with a
    TTL under memory pressure, a heartbeat among the first: a worker beating without a break is taken for dead (the
    key's eviction stands for it here), its request handed over and written by its taker, and its own lease proves
    nothing. Before: a wrote the page too, unasked: it was in both directories. Now no pop there is a first
    delivery (the policy is read with the run id, once a connection): every page is asked about."""
    before = r.config_get("maxmemory-policy")
    r.config_set("maxmemory-policy", "volatile-lru")
    try:
        a, b, request = two_beating_one_taken(workers)  # their connections read the policy
        a.scheduler.queue.outbox.flush()  # its quota answer (the outbox's timer): the lane's limit known to b
        r.delete(keys.heartbeat(a.node.worker))  # evicted (a beats again later: its lease looks unbroken to it)
        assert b.scheduler.queue.reap()[0] == 1
        again = b.take()
        assert not b.write(again).skipped and b.lines() == 1
        b.ack(again)
        a.node.refresh_heartbeat()
        assert a.write(request).skipped and a.lines() == 0
        assert not request.meta[META_DELIVERY].first and not a.crawler.stats.get_value("tweetform/pages/written_check_skipped")
    finally:
        r.config_set("maxmemory-policy", before["maxmemory-policy"])


def test_pages_whose_request_is_not_known_are_checked(r, workers):
    """An item no callback of a popped request yielded (a dead-lettered request's errors record, collect mode's
    writer, a hand-made item) carries no delivery: asked, as before."""
    a = workers("a")
    a.node.refresh_heartbeat()
    prov = {"url": "https://api.test/x", "bucket": "friend_ids", "key": "12", "job": "j",
            "page_id": page_id("j", "friend_ids", "12", "https://api.test/x")}
    scripts_run(r)
    a.pipeline.process_item(make_page({"ids": []}, b'{"ids":[]}', prov))
    assert "page_known" in scripts_run(r)


# --- real workers, each host its own output directory -----------------------------------------------------------

def pages_of(box: Any, outputs: list[Path], seed: int, depth: int) -> None:
    """The union of the hosts' directories equals the truth, and no page is in two of them (or twice in one)."""
    expected = box.get(f"/_sandbox/truth/reachable?seeds={seed}&depth={depth}&direction=friends")["ids"]
    seen: dict[str, list[str]] = {}
    found: dict[str, list[Any]] = {}
    protected: set[str] = set()
    for output in outputs:
        protected |= {k for k, v in errors_of(output).items() if v == "protected"}
        for key, lines in bucket(output, "friend_ids").items():
            found.setdefault(key, []).extend(lines)
            for line in lines:
                seen.setdefault(line["__tweetform"]["page_id"], []).append(output.name)
    twice = {pid: where for pid, where in seen.items() if len(where) > 1}
    assert not twice, f"pages written twice: {twice}"
    assert set(found) | protected == {str(u) for u in expected}
    for key, lines in found.items():  # a user's pages may be split between the hosts: each id once
        assert sorted(ids_of(lines)) == sorted(box.truth("following", int(key))), key


def stat(log: str, name: str) -> int:
    """A counter of a worker's stats dump (0 when absent)."""
    found = re.search(rf"'{re.escape(name)}': (\d+)", log)
    return int(found.group(1)) if found else 0


def logged_scripts(r: redis.Redis) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in scripts_run(r):
        counts[name] = counts.get(name, 0) + 1
    return counts


def test_a_distributed_crawl_asks_redis_about_no_page_and_each_page_is_written_once(r, sandbox_factory, redis_url, tmp_path):
    """Two workers, each host its own output directory, a depth-3 job: no page_known call (before: one a page) but for
    a retried request's page (a 429 or a server error: none expected here), every page recorded, the union of the two
    directories equals the truth, no page in both."""
    box = sandbox_factory(*WORLD, "--latency", "0.12")  # a crawl long enough for both workers to take part
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    outputs = [tmp_path / "host0", tmp_path / "host1"]
    envs = [{**worker_env(box, redis_url, out), "TWEETFORM_HEARTBEAT_TTL": "10"} for out in outputs]
    push(envs[0], "friends", "--user-id", str(seed), "--depth", "3", "--job", "fresh")
    r.slowlog_reset()
    procs = [start_workers(env, 1, True, "-s", "CONCURRENT_REQUESTS=2", "-s", "LOG_FILE=/dev/stderr", spiders="friends")[0]
             for env in envs]
    logs = wait_all(procs, timeout=240)
    ran = logged_scripts(r)
    retried = sum(stat(log, name) for log in logs for name in ("retry/count", "tweetform/quota/rate_limited"))
    written = sum(len(lines) for out in outputs for lines in bucket(out, "friend_ids").values())
    assert written > 50 and all(bucket(out, "friend_ids") for out in outputs)  # both hosts wrote pages
    assert ran.get("page_known", 0) <= retried, ran
    assert sum(stat(log, "tweetform/pages/written_check_skipped") for log in logs) >= written - retried
    assert int(r.hget(keys.job_progress("fresh"), "pages")) == written  # every page recorded, once
    pages_of(box, outputs, seed, 3)


def test_a_worker_frozen_before_its_answer_checks_the_page_another_worker_took_over(r, sandbox_factory, redis_url, tmp_path):
    """A worker SIGSTOPped while its one request waits for the API's answer, past its heartbeat TTL: another worker
    (its own output directory) is handed the request, writes its page and finishes the job; the first, thawed,
    gets the answer. Its heartbeat lapsed after the pop, so it asks Redis, and writes nothing. Without the lease's
    proof (a first delivery taken for this worker's alone) it wrote the page a second time into its directory."""
    box = sandbox_factory(*WORLD, "--latency", "0.7")  # a sandbox of its own: tests that share one set its latency to 0
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    outputs = [tmp_path / "stalled", tmp_path / "other"]
    envs = [worker_env(box, redis_url, out) for out in outputs]  # heartbeat TTL 1.5 s
    push(envs[0], "friends", "--user-id", str(seed), "--depth", "2", "--job", "thaw")
    stalled = start_workers(envs[0], 1, True, "-s", "CONCURRENT_REQUESTS=1", "-s", "LOG_FILE=/dev/stderr",
                            spiders="friends")[0]

    def young_single_hold() -> str | None:
        """The stalled worker's one in-flight request, if popped under 0.25 s ago (its answer takes 0.7 s)."""
        held = [(k, json.loads(v)) for k, v in r.hgetall(keys.in_flight("friends")).items()]
        mine = [(k, e) for k, e in held if f"-{stalled.pid}-" in e["w"]]
        sec, usec = r.time()
        if len(mine) == 1 and sec + usec / 1e6 - mine[0][1]["t"] < 0.25 and r.llen(keys.jobs_inbox("friends")) == 0:
            return mine[0][0].decode()
        return None

    deadline = time.monotonic() + 60
    qid = None
    while qid is None and time.monotonic() < deadline:
        qid = young_single_hold()
        if qid is None:
            time.sleep(0.01)
    assert qid is not None, "the worker never held a fresh request alone"
    stalled.send_signal(signal.SIGSTOP)
    try:
        other = start_workers(envs[1], 1, True, "-s", "CONCURRENT_REQUESTS=2", spiders="friends")[0]
        wait_all([other], timeout=240)  # reaped (TTL 1.5 s), taken over, the job done
    finally:
        stalled.send_signal(signal.SIGCONT)
    assert r.hget(keys.job("thaw"), "state") == b"done"
    log = wait_all([stalled], timeout=120)[0]
    pages_of(box, outputs, seed, 2)
    assert stat(log, "tweetform/pages/duplicate_skipped") >= 1, "the thawed worker never handled the answer it waited for"


def test_a_worker_killed_after_its_pages_record_before_its_ack_hands_over_a_checked_request(r, sandbox_factory, redis_url, tmp_path):
    """A worker SIGKILLed after its N-th page is written and recorded in Redis, before the page's request is
    acknowledged: its request is handed over (marked) to a worker with its own output directory, which asks and
    writes nothing. The whole job: each page once across both directories."""
    box = sandbox_factory(*WORLD, "--latency", "0.2")
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    outputs = [tmp_path / "killed", tmp_path / "other"]
    envs = [worker_env(box, redis_url, out) for out in outputs]
    push(envs[0], "friends", "--user-id", str(seed), "--depth", "2", "--job", "killed")
    victim = start_workers({**envs[0], "PYTHONPATH": str(Path(__file__).parent), "TWEETFORM_TEST_KILL_AFTER_WRITES": "5"}, 1, True,
                           "-s", "CONCURRENT_REQUESTS=1", "-s", 'ITEM_PIPELINES={"kill_after_write.KillAfterRecordPipeline": 500}',
                           spiders="friends")[0]
    out, _ = victim.communicate(timeout=120)
    assert victim.returncode == -signal.SIGKILL, out[-2000:]
    assert sum(len(lines) for name in ("friend_ids", "errors") for lines in bucket(outputs[0], name).values()) == 5
    r.slowlog_reset()
    logs = wait_all([start_workers(envs[1], 1, True, "-s", "CONCURRENT_REQUESTS=2", "-s", "LOG_FILE=/dev/stderr",
                                   spiders="friends")[0]], timeout=240)
    assert "put back" in logs[0]
    pages_of(box, outputs, seed, 2)
    assert logged_scripts(r).get("page_known", 0) >= 1  # the handed-over request was checked
