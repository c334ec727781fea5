"""Script calls whose answer nothing waits for ride the worker's next round trip (one outbox per crawler).

Three of a page's calls in distributed mode need no answer at once: its quota answer (``quota_answered.lua``,
from the API-error middleware), its record in the job's written pages (``page_written.lua``, after the bucket
pipeline's write), and which of its resource ids were not billed yet that UTC day (``cost_seen.lua``, from the
cost middleware: its answer, read when it arrives, is the page's cost; ``tweetform.cost.ledger``). Sent alone,
each cost a round trip (~10–45 µs of redis-server time outside any command, a cold Redis woken at low page rates).
Once the worker's scheduler opens the outbox (:meth:`Outbox.start`), they wait here and go first, in the
order sent, in the pipeline of the worker's next round trip that drains it (:func:`scripts.execute` with the
outbox: the pop, the push with its acknowledgements, the acknowledgements alone, the reap, the billed ids,
the written-pages check), at the latest ``DELAY`` seconds after (a reactor timer; that round trip also carries
what the scheduler buffered for its next pop: a page's new requests and its acknowledgement), and when the
scheduler closes.

What that keeps:

* a page's record reaches Redis before its request's acknowledgement (which can end the job, whose counters
  are then final) and before the request is handed back (``reap``, a worker stopping): another worker taking
  it again finds the page written;
* this worker's quota answers reach Redis before its next pop (the pop's pipeline drains them first); another
  worker's pop meanwhile sees the reservation still in flight, i.e. the lane with one request less, as
  while the request was on the wire. A 429 is not deferred (``RedisQuotaBook.answered``): it blocks the lane
  for every worker at once;
* a page's billed ids reach Redis before its request's acknowledgement, in the same round trip; the page is
  charged (stats, ledger, its answer's budget reservation settled) when that round trip's answers come back,
  before the round trip's caller goes on, and at the latest when the scheduler closes, before ``spider_closed``.

Redis away or refusing: each call fails as it did when sent alone (its ``failed`` is told; the outbox does not
send it again, a billed-ids call's sender does: ``SharedCostLedger``). A worker killed (SIGKILL) loses what
waits, at most the last ``DELAY`` seconds' answers, records and billed ids (killed a moment later it would lose
the requests in flight anyway): a lost answer leaves its reservation to expire (``hold``), a lost record or
billed-ids call leaves the page in its file, unacknowledged, whose request another worker takes again when this
one's heartbeat expires (and bills its ids, which Redis never heard of; the page_written call could always be
lost that way between the write and the record; a writer of the same file reads the page back and skips it). Before the scheduler
opens it (and in ``scrapy collect``, whose writer has no scheduler), a call is sent at once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from redis.exceptions import RedisError
from scrapy.crawler import Crawler
from scrapy.utils.reactor import CallLaterOnce, is_reactor_installed

from tweetform.crawler_state import state_of
from tweetform.state.redis import connection, scripts

logger = logging.getLogger(__name__)


class Outbox:
    """The crawler's write-only script calls waiting for its next round trip (see the module doc)."""

    DELAY = 0.2  # seconds a call waits at most while the worker sends nothing else

    def __init__(self, server: Any) -> None:
        self.server = server
        self.calls: list[scripts.Call] = []
        self.started = False
        self._timer = CallLaterOnce(self.flush)
        #: the scheduler's sync, set while it is open: what it buffered (requests pushed, acknowledgements, waiting for
        #: its next pop too) goes in the flush's round trip, these calls first, instead of in another one a moment later
        self.sync: Callable[[], None] | None = None

    def start(self) -> None:
        """Calls wait from now on: the scheduler's pops, pushes and acknowledgements drain them."""
        self.started = True
        self._timer = CallLaterOnce(self.flush)

    def send(self, script: Any, keys: list[Any], args: list[Any], failed: Callable[[BaseException], None],
             answered: Callable[[Any], None] | None = None) -> None:
        """Call ``script``: in the next round trip once started, else now; its answer goes to ``answered``
        (if given) when it comes. Never raises: an error goes to ``failed``."""
        if not self.started:
            try:
                answer = script(keys=keys, args=args)
            except RedisError as exc:
                failed(exc)
                return
            if answered is not None:
                answered(answer)
            return
        self.calls.append(scripts.Call(script, keys, args, failed, answered))
        if has_loop():  # a worker's (none in unit tests: the next round trip drains it)
            self._timer.schedule(self.DELAY)

    def take(self) -> list[scripts.Call]:
        """The waiting calls, in order, for the caller's pipeline (:func:`scripts.execute`)."""
        calls, self.calls = self.calls, []
        return calls

    def flush(self) -> None:
        """Send what waits now, in a round trip of its own (the scheduler's sync's, when it has something to send)."""
        if self.calls and self.sync is not None:
            self.sync()
        if self.calls:
            try:
                scripts.execute(self.server, lambda pipe: None, self)
            except RedisError:
                pass  # each call's own ``failed`` was told

    def stop(self) -> None:
        """The scheduler closes: send what waits; later calls (a call sent again after it failed here too)
        are sent at once."""
        self.started = False
        self._timer.cancel()
        self.flush()


def has_loop() -> bool:
    """Whether a timer can be set: a running asyncio loop or an installed reactor (Scrapy's call_later uses either)."""
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return is_reactor_installed()


def for_crawler(crawler: Crawler) -> Outbox:
    """The crawler's outbox (kept in its CrawlerState), beside its Redis client."""
    held = state_of(crawler)
    if held.outbox is None:
        held.outbox = Outbox(connection.for_crawler(crawler))
    return held.outbox
