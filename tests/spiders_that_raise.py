"""Tests only: spiders whose callback raises on chosen pages (SPIDER_MODULES=...,spiders_that_raise).

No real API answer makes a tweetform callback raise, so these subclasses stand in
for a bug in a callback: the crawl must record the page as failed and go on."""

from __future__ import annotations

from typing import Any, Iterator

from scrapy.http import Response

from tweetform.spiders.base import META_CTX
from tweetform.spiders.network import FriendsSpider


def raises_for(uid: Any) -> bool:
    """The level-2 users whose page raises: every third id (deterministic)."""
    return int(uid) % 3 == 0


class FriendsThatRaise(FriendsSpider):
    name = "friends_that_raise"

    def on_page(self, response: Response, body: Any) -> Iterator[Any]:
        ctx = response.meta[META_CTX]
        if ctx["depth"] == 2 and raises_for(ctx["source"]):
            raise RuntimeError(f"a bug in a callback (user {ctx['source']})")
        yield from super().on_page(response, body)
