"""``users`` and ``tweets``: objects by id (or screen name), 100 per request.

v1.1 drops what it cannot return without saying so; the spiders compare the
answer with what was asked and record every missing id in the ``errors``
bucket, so a look-up job accounts for each id it was given.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

import scrapy
from scrapy.http import Response

from tweetform.api import errors
from tweetform.api.endpoints import V2_TWEET_PARAMS, V2_USER_PARAMS
from tweetform.spiders.arguments import JobArgs
from tweetform.spiders.base import META_CTX, ApiSpider

BATCH = 100


def batches(items: list, size: int = BATCH) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class UsersSpider(ApiSpider):
    name = "users"

    @classmethod
    def default_bucket(cls, raw: dict[str, Any]) -> str:
        return "users"

    def first_requests(self, job: JobArgs) -> Iterable[scrapy.Request]:
        for batch in batches(list(dict.fromkeys(job.user_ids))):
            target = ",".join(map(str, batch))
            if job.api == "2":
                yield self.api_request(job, "/2/users", {"ids": target, **V2_USER_PARAMS}, key=job.job, extra={"target": target, "by": "id"})
            else:
                yield self.api_request(job, "/users/lookup", {"user_id": target, "include_entities": "true"}, key=job.job, extra={"target": target, "by": "id"})
        for batch in batches(list(dict.fromkeys(n.lower() for n in job.screen_names))):
            target = ",".join(batch)
            if job.api == "2":
                yield self.api_request(job, "/2/users/by", {"usernames": target, **V2_USER_PARAMS}, key=job.job, extra={"target": target, "by": "name"})
            else:
                yield self.api_request(job, "/users/lookup", {"screen_name": target, "include_entities": "true"}, key=job.job, extra={"target": target, "by": "name"})

    def on_page(self, response: Response, body: Any) -> Iterator[Any]:
        if response.meta["tweetform_endpoint"] != "/users/lookup":
            return  # v2 names every missing id in its partial errors
        ctx = response.meta[META_CTX]
        by_name = ctx["by"] == "name"
        got = {(u["screen_name"].lower() if by_name else u["id_str"]) for u in body}
        for asked in ctx["target"].split(","):
            if asked not in got:
                yield self.error_item(response, "not_found_or_suspended", asked, None, None)

    def on_account_error(self, response: Response, outcome: errors.Outcome | None) -> Iterator[Any]:
        return iter(())


class TweetsSpider(ApiSpider):
    name = "tweets"
    seeds = "tweets"
    arguments = frozenset({"tweet_id"})

    @classmethod
    def default_bucket(cls, raw: dict[str, Any]) -> str:
        return "tweets"

    def first_requests(self, job: JobArgs) -> Iterable[scrapy.Request]:
        for batch in batches(list(dict.fromkeys(job.tweet_ids))):
            target = ",".join(map(str, batch))
            if job.api == "2":
                yield self.api_request(job, "/2/tweets", {"ids": target, **V2_TWEET_PARAMS}, key=job.job, extra={"target": target})
            else:
                params = {"id": target, "map": "true", "include_entities": "true", "tweet_mode": "extended"}
                yield self.api_request(job, "/statuses/lookup", params, key=job.job, extra={"target": target})

    def on_page(self, response: Response, body: Any) -> Iterator[Any]:
        if response.meta["tweetform_endpoint"] != "/statuses/lookup":
            return
        for tid, tweet in (body.get("id") or {}).items():
            if tweet is None:
                yield self.error_item(response, "not_found_or_protected", tid, None, None)
