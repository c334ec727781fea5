"""``timeline``: a user's tweets, newest first, to the API's 3,200 cap.

v1.1 walks ``max_id`` down (lowest id seen − 1) until an empty page; v2 follows
``pagination_token``. ``since_id`` collects only tweets newer than a previous
run's newest; ``max_tweets`` stops early.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

import scrapy
from scrapy.http import Response

from tweetform.api.endpoints import ENDPOINTS, V2_TWEET_PARAMS
from tweetform.spiders.base import META_CTX, UserSeededSpider, shrink_page


def tweets_in_page(body: Any) -> int:
    if isinstance(body, list):
        return len(body)
    if isinstance(body, dict):
        if "statuses" in body:
            return len(body["statuses"])
        return len(body.get("data") or [])
    return 0


class TimelineSpider(UserSeededSpider):
    name = "timeline"
    arguments = frozenset({"since_id", "max_tweets"})

    @classmethod
    def default_bucket(cls, raw: dict[str, Any]) -> str:
        return "timelines"

    def seed_user(self, uid: int) -> Iterable[scrapy.Request]:
        assert self.job is not None
        if self.job.api == "2":
            params: dict[str, Any] = {"max_results": 100, **V2_TWEET_PARAMS}
            if self.job.since_id:
                params["since_id"] = self.job.since_id
            if self.job.max_tweets:
                params = shrink_page(ENDPOINTS["/2/users/:id/tweets"], params, self.job.max_tweets)
            yield self.api_request("/2/users/:id/tweets", params, key=str(uid), path_id=uid, source=uid, extra={"seen": 0})
        else:
            params = {"user_id": uid, "count": 200, "include_rts": "true", "tweet_mode": "extended"}
            if self.job.since_id:
                params["since_id"] = self.job.since_id
            if self.job.max_tweets:
                params = shrink_page(ENDPOINTS["/statuses/user_timeline"], params, self.job.max_tweets)
            yield self.api_request("/statuses/user_timeline", params, key=str(uid), source=uid, extra={"seen": 0})

    def on_page(self, response: Response, body: Any) -> Iterator[Any]:
        assert self.job is not None
        seen = response.meta[META_CTX]["seen"] + tweets_in_page(body)
        if self.job.max_tweets is not None and seen >= self.job.max_tweets:
            return
        nxt = self.next_page(response, body, remaining=None if self.job.max_tweets is None else self.job.max_tweets - seen)
        if nxt is not None:
            nxt.meta[META_CTX]["seen"] = seen
            yield nxt
