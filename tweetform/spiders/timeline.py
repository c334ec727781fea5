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
from tweetform.spiders.arguments import JobArgs
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

    def seed_user(self, job: JobArgs, uid: int) -> Iterable[scrapy.Request]:
        if job.api == "2":
            params: dict[str, Any] = {"max_results": 100, **V2_TWEET_PARAMS}
            if job.since_id:
                params["since_id"] = job.since_id
            if job.max_tweets:
                params = shrink_page(ENDPOINTS["/2/users/:id/tweets"], params, job.max_tweets)
            yield self.api_request(job, "/2/users/:id/tweets", params, key=str(uid), path_id=uid, source=uid, extra={"seen": 0})
        else:
            params = {"user_id": uid, "count": 200, "include_rts": "true", "tweet_mode": "extended"}
            if job.since_id:
                params["since_id"] = job.since_id
            if job.max_tweets:
                params = shrink_page(ENDPOINTS["/statuses/user_timeline"], params, job.max_tweets)
            yield self.api_request(job, "/statuses/user_timeline", params, key=str(uid), source=uid, extra={"seen": 0})

    def on_page(self, response: Response, body: Any) -> Iterator[Any]:
        job = self.job_of(response)
        seen = response.meta[META_CTX]["seen"] + tweets_in_page(body)
        if job.max_tweets is not None and seen >= job.max_tweets:
            return
        nxt = self.next_page(response, body, remaining=None if job.max_tweets is None else job.max_tweets - seen)
        if nxt is not None:
            nxt.meta[META_CTX]["seen"] = seen
            yield nxt
