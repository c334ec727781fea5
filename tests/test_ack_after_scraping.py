"""AckAfterScraping (the local scheduler's mix-in) polls the scraper on a timer, not every reactor turn.

A unit test of one component: the scraper's slot is a hand-made object holding a
request "in scraping", and the event loop's clock is a fake one the test moves, so
polls are counted against time that passed, not against wall time.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from scrapy import Request

from tweetform.state.base import AckAfterScraping


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

    def acks_waiting(self, everything: bool = False) -> int:
        self.polls += 1
        return super().acks_waiting(everything)


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


def test_next_request_and_close_ack_without_waiting_for_the_timer() -> None:
    async def test(loop: FrozenClockLoop) -> None:
        first, second = Request("https://api.twitter.com/2/users/1"), Request("https://api.twitter.com/2/users/2")
        active = {first, second}
        scheduler = CountingScheduler(active)
        scheduler.ack(first)
        scheduler.ack(second)

        active.discard(first)
        assert scheduler.acks_waiting() == 1  # what next_request calls: the finished one goes now
        assert scheduler.acked == [first]

        assert scheduler.acks_waiting(everything=True) == 0  # close: the engine closes once the scraper is idle
        assert scheduler.acked == [first, second]

        polls = scheduler.polls  # the timer was cancelled with nothing left
        loop.now += 1.0
        await turns(50)
        assert scheduler.polls == polls

    run(test)
