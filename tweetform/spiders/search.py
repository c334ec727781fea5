"""``search``: tweets matching a query, recent (7 days) or full archive (v2).

Only the API's end marker stops paging (v1.1 ``next_results``, v2
``next_token``): short pages are not the last. The bucket key is the md5 of
the query, as tweetf0rm named its search files.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable, Iterator

import scrapy
from scrapy.http import Response

from tweetform.api.endpoints import BLUESKY, ENDPOINTS, V2_TWEET_PARAMS
from tweetform.job import JobArgs
from tweetform.spiders.base import ApiSpider, shrink_page


def query_key(query: str, lang: str | None = None, geocode: str | None = None) -> str:
    text = query + (f" lang:{lang}" if lang else "") + (f" geocode:{geocode}" if geocode else "")
    return hashlib.md5(text.encode()).hexdigest()


class SearchSpider(ApiSpider):
    name = "search"
    seeds = "query"
    arguments = frozenset({"query", "lang", "geocode", "max_tweets", "archive", "start_time", "end_time"})

    @classmethod
    def default_bucket(cls, raw: dict[str, Any]) -> str:
        return "search"

    @classmethod
    def endpoints_for(cls, job: JobArgs) -> list[str]:
        return [search_endpoint(job)]

    def first_requests(self, job: JobArgs) -> Iterable[scrapy.Request]:
        for query in dict.fromkeys(job.all_queries):  # file=: each query its own key (twarc2 searches)
            yield self.query_request(job, query)

    def query_request(self, job: JobArgs, query: str) -> scrapy.Request:
        key = query_key(query, job.lang, job.geocode)
        endpoint = search_endpoint(job)
        if job.api == BLUESKY:  # on the PDS, with an account session; start/end_time as since/until
            params: dict[str, Any] = {"q": query, "limit": 100, "sort": "latest", "lang": job.lang,
                                      "since": job.start_time, "until": job.end_time}
        elif job.api == "2":
            params: dict[str, Any] = {"query": query + (f" lang:{job.lang}" if job.lang else ""),
                                      "max_results": ENDPOINTS[endpoint].pages[1], **V2_TWEET_PARAMS}
            params.update(time_params(job))
        else:
            params = {"q": query, "count": 100, "result_type": "recent", "tweet_mode": "extended", "include_entities": "true"}
            if job.lang:
                params["lang"] = job.lang
            if job.geocode:
                params["geocode"] = job.geocode
        if job.max_tweets:
            params = shrink_page(ENDPOINTS[endpoint], params, job.max_tweets)
        return self.api_request(job, endpoint, params, key=key, extra={"seen": 0, "target": query})

    def on_page(self, response: Response, body: Any) -> Iterator[Any]:
        yield from self.follow(response, body, self.job_of(response).max_tweets)


def search_endpoint(job: JobArgs) -> str:
    if job.api == BLUESKY:
        return "app.bsky.feed.searchPosts"
    if job.api != "2":
        return "/search/tweets"
    return "/2/tweets/search/all" if job.archive else "/2/tweets/search/recent"


def time_params(job: JobArgs) -> dict[str, str]:
    """``start_time`` / ``end_time`` as the v2 search and counts endpoints take them."""
    return {name: value for name, value in (("start_time", job.start_time), ("end_time", job.end_time)) if value}
