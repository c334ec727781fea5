"""AckAfterScraping (the schedulers' mix-in) polls the scraper on a timer, not every reactor turn; the Redis
scheduler's acknowledgements ride its next pop, or go alone a moment later.

A unit test of one component: the scraper's slot is a hand-made object holding a
request "in scraping", and the event loop's clock is a fake one the test moves, so
polls are counted against time that passed, not against wall time.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import redis

from crawling import unit_crawler
from scrapy import Request, Spider

from tweetform.state.base import ACK_POLL_INTERVAL, AckAfterScraping
from tweetform.state.redis import connection, keys
from tweetform.state.redis.scheduler import SEND_DELAY, RedisScheduler


class FrozenClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock moves only when the test moves it."""

    now = 0.0

    def time(self) -> float:
        return self.now


class CountingScheduler(AckAfterScraping):
    def __init__(self, active: set[Request]) -> None:
        self.crawler = SimpleNamespace(engine=SimpleNamespace(scraper=SimpleNamespace(slot=SimpleNamespace(active=active))))
        self.polls = 0
        self.acked: list[Request] = []

    def ack_done(self, requests: list[Request]) -> None:
        self.acked += requests

    def acks_waiting(self) -> int:
        self.polls += 1
        return super().acks_waiting()


async def turns(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def run(test) -> None:
    loop = FrozenClockLoop()
    try:
        loop.run_until_complete(test(loop))
    finally:
        loop.close()


def test_a_response_held_in_the_scraper_costs_polls_per_time_not_per_reactor_turn() -> None:
    async def test(loop: FrozenClockLoop) -> None:
        page = Request("https://api.twitter.com/2/users/1/following")
        active = {page}
        scheduler = CountingScheduler(active)
        scheduler.ack(page)  # its callback returned; its outputs still wait in the scraper

        await turns(1000)  # a busy reactor, no time passing
        assert scheduler.polls <= 1, f"{scheduler.polls} polls in 1000 reactor turns with no time passing"
        assert scheduler.acked == []

        for _ in range(10):  # half a second with the response still in the scraper
            loop.now += 0.05
            await turns(50)
        assert 5 <= scheduler.polls <= 12
        assert scheduler.acked == []

        active.clear()  # the scraper is done with it
        loop.now += 0.05
        await turns(50)
        assert scheduler.acked == [page]

        polls = scheduler.polls  # nothing waits: polling stops
        for _ in range(10):
            loop.now += 0.05
            await turns(50)
        assert scheduler.polls == polls

    run(test)


def test_next_request_and_close_ack_what_the_scraper_finished_without_waiting_for_the_timer() -> None:
    async def test(loop: FrozenClockLoop) -> None:
        first, second = Request("https://api.twitter.com/2/users/1"), Request("https://api.twitter.com/2/users/2")
        active = {first, second}
        scheduler = CountingScheduler(active)
        scheduler.ack(first)
        scheduler.ack(second)

        active.discard(first)
        assert scheduler.acks_waiting() == 1  # what next_request calls: the finished one goes now
        assert scheduler.acked == [first]

        assert scheduler.close_acks() == 1  # close: what the scraper still holds is not acknowledged
        assert scheduler.acked == [first]

        polls = scheduler.polls  # the timer was cancelled with nothing left
        loop.now += 1.0
        await turns(50)
        assert scheduler.polls == polls

    run(test)


def redis_scheduler_of(redis_url: str) -> tuple[RedisScheduler, set[Request]]:
    """A Redis scheduler of spider "friends", opened, whose scraper holds the requests in the returned set."""
    crawler = unit_crawler(Spider, {"REDIS_URL": redis_url})
    crawler.spider = spider = Spider.from_crawler(crawler, name="friends")
    active: set[Request] = set()
    crawler.engine = SimpleNamespace(scraper=SimpleNamespace(slot=SimpleNamespace(active=active)))
    scheduler = RedisScheduler.from_crawler(crawler)
    scheduler.open(spider)
    return scheduler, active


def test_close_gives_back_a_request_whose_items_the_scraper_still_holds(redis_url: str) -> None:
    """At close the Redis scheduler acknowledges only what Scrapy's scraper has finished: a request
    whose items are still in the scraper goes back to the queue (another worker fetches it again)
    instead of being acknowledged and lost with the items a dying process never wrote."""

    def scheduler_of() -> tuple[RedisScheduler, set[Request]]:
        return redis_scheduler_of(redis_url)

    async def test(loop: FrozenClockLoop) -> None:  # the ack poll needs a running loop
        first, active = scheduler_of()
        first.server.hset(keys.job("j1"), "state", "running")  # a running job's requests are handed out
        for n in (1, 2):  # no endpoint: no quota to wait for
            first.enqueue_request(Request(f"https://api.x.com/2/users/{n}/following", meta={"tweetform_ctx": {"job": "j1"}}))
        first.sync()
        done, held = first.next_request(), first.next_request()
        assert done is not None and held is not None and len(first.queue) == 0
        active.add(held)  # its callback returned, its items are still in the scraper
        first.ack(done)
        first.ack(held)
        first.close("shutdown")

        second, _ = scheduler_of()
        again = second.next_request()
        assert again is not None and again.url == held.url  # handed back, not acknowledged
        assert second.next_request() is None  # the finished one was acknowledged
        second.close("finished")

    run(test)


def test_an_acknowledgement_rides_the_next_pop_and_without_one_goes_alone_a_moment_later(redis_url: str) -> None:
    """A finished request's acknowledgement, and the requests its page produced, go with the worker's next pop: one
    round trip for the three (before, the ack sent them at once, a round trip the next pop made anyway). With no pop
    after it (the engine pops when a download ends, not while all its slots are busy, nor with nothing left to take),
    they go alone once SEND_DELAY has passed on the loop's clock: the job's last acknowledgement still ends the job."""

    async def test(loop: FrozenClockLoop) -> None:
        scheduler, active = redis_scheduler_of(redis_url)
        r = redis.Redis.from_url(redis_url)  # the test's own client: the scheduler's counts its round trips
        r.hset(keys.job("j1"), "state", "running")

        def request(n: int) -> Request:  # no endpoint: no quota to wait for
            return Request(f"https://api.x.com/2/users/{n}/following", meta={"tweetform_ctx": {"job": "j1"}})

        for n in (1, 2):
            scheduler.enqueue_request(request(n))
        scheduler.sync()
        first, second = scheduler.next_request(), scheduler.next_request()
        assert first is not None and second is not None
        trips = connection.round_trips(scheduler.crawler)

        active.add(first)  # its callback yields a request, then returns; the scraper has not finished with it yet
        scheduler.enqueue_request(request(3))
        scheduler.ack(first)
        active.discard(first)
        loop.now += ACK_POLL_INTERVAL  # the scraper's done with it: the ack poll sees it, nothing is sent
        await turns(50)
        assert connection.round_trips(scheduler.crawler) == trips
        assert r.hlen(keys.in_flight("friends")) == 2

        third = scheduler.next_request()  # queues the new request, acknowledges the first, takes the new one
        assert third is not None and third.url == request(3).url
        assert connection.round_trips(scheduler.crawler) == trips + 1
        assert r.hlen(keys.in_flight("friends")) == 2 and scheduler.queue.unacked == {}
        loop.now += SEND_DELAY  # the pop carried everything: the timer sends nothing
        await turns(50)
        assert connection.round_trips(scheduler.crawler) == trips + 1

        scheduler.ack(second)  # the job's last two; no pop follows
        scheduler.ack(third)
        await turns(50)
        assert r.hget(keys.job("j1"), "state") == b"running"
        assert connection.round_trips(scheduler.crawler) == trips + 1
        loop.now += SEND_DELAY
        await turns(50)
        assert r.hlen(keys.in_flight("friends")) == 0
        assert r.hget(keys.job("j1"), "state") == b"done"
        assert connection.round_trips(scheduler.crawler) == trips + 2  # both in one round trip
        scheduler.close("finished")
        r.close()

    run(test)
