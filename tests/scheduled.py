"""A worker's scheduler driven by hand (tests of one worker's components in this process, on a real Redis)."""

from __future__ import annotations

from typing import Any

from scrapy import Request

ENDPOINT = "/friends/ids"


def push_friends_ids(scheduler: Any, *ns: int) -> None:
    """Queue one friends/ids request of job "j" per ``n`` and send them (the scheduler's sync)."""
    for n in ns:
        scheduler.enqueue_request(Request(f"https://api.test/friends/ids?n={n}",
                                          meta={"tweetform_endpoint": ENDPOINT, "tweetform_ctx": {"job": "j"}}))
    scheduler.sync()


def take(scheduler: Any) -> Request:
    """The scheduler's next request (there must be one)."""
    request = scheduler.next_request()
    assert request is not None
    return request
