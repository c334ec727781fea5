"""``friends`` and ``followers``: follow networks to any depth, tweetf0rm's way.

``depth=1`` crawls the seed's list only; ``depth=2`` also each account in it,
and so on. Each user is expanded once per job. Without ``max_users`` users are
expanded as soon as they are found; with it, expansion goes level by level so
that exactly the first ``max_users`` users in breadth-first order are expanded,
whatever order the pages arrive in.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

import scrapy
from scrapy.http import Response

from tweetform.api.endpoints import V2_USER_FIELDS
from tweetform.spiders.base import META_CTX, UserSeededSpider


def ids_in_page(body: Any) -> list[int]:
    """Account ids of one page of any of the four list endpoints."""
    if isinstance(body, dict):
        if "ids" in body:
            return [int(i) for i in body["ids"]]
        if "users" in body:
            return [int(u.get("id_str") or u["id"]) for u in body["users"]]
        return [int(u["id"]) for u in body.get("data") or []]
    return []


class NetworkSpider(UserSeededSpider):
    direction: str = ""  # "friends" or "followers"
    arguments = frozenset({"data_type", "depth", "max_users"})

    @classmethod
    def default_bucket(cls, raw: dict[str, Any]) -> str:
        singular = "friend" if cls.direction == "friends" else "follower"
        return f"{singular}_ids" if raw.get("data_type", "ids") == "ids" else cls.direction

    def _state(self) -> None:
        if not hasattr(self, "expanded"):
            self.expanded: set[int] = set()
            # level-synchronous mode (max_users): per level, its users in BFS order,
            # requests still open, and the ids each user's pages found
            self.level_users: dict[int, list[int]] = {}
            self.open_requests: dict[int, int] = {}
            self.found: dict[int, dict[int, dict[int, list[int]]]] = {}

    def seed_user(self, uid: int) -> Iterable[scrapy.Request]:
        self._state()
        yield from self.expand([uid], 1)

    def expand(self, uids: list[int], level: int) -> Iterator[scrapy.Request]:
        assert self.job is not None
        for uid in uids:
            if uid in self.expanded:
                continue
            if self.job.max_users is not None and len(self.expanded) >= self.job.max_users:
                self.crawler.stats.inc_value("tweetform/users/skipped_by_max_users")
                continue
            self.expanded.add(uid)
            self.crawler.stats.inc_value("tweetform/users/expanded")
            self.level_users.setdefault(level, []).append(uid)
            self.open_requests[level] = self.open_requests.get(level, 0) + 1
            yield self.first_page(uid, level)

    def first_page(self, uid: int, level: int) -> scrapy.Request:
        assert self.job is not None
        ids_only = self.job.data_type == "ids"
        if self.job.api == "2":
            endpoint = "/2/users/:id/following" if self.direction == "friends" else "/2/users/:id/followers"
            params: dict[str, Any] = {"max_results": 1000}
            if not ids_only:
                params["user.fields"] = V2_USER_FIELDS
        else:
            endpoint = f"/{self.direction}/{'ids' if ids_only else 'list'}"
            params = {"user_id": uid, "count": 5000 if ids_only else 200}
            if ids_only:
                params["stringify_ids"] = "true"
            else:
                params.update({"skip_status": "false", "include_user_entities": "true"})
        # earlier levels first, so a breadth-first crawl stays breadth-first
        return self.api_request(endpoint, params, key=str(uid), path_id=uid, depth=level, source=uid, priority=-level)

    def on_page(self, response: Response, body: Any) -> Iterator[Any]:
        assert self.job is not None
        ctx = response.meta[META_CTX]
        level, source = ctx["depth"], ctx["source"]
        nxt = self.next_page(response, body)
        if nxt is not None:
            self.open_requests[level] += 1
            yield nxt
        if level < self.job.depth:
            ids = ids_in_page(body)
            if self.job.max_users is None:
                yield from self.expand(ids, level + 1)
            else:
                self.found.setdefault(level, {}).setdefault(source, {})[ctx.get("page_no", 0)] = ids
        yield from self.request_done(level)

    def on_account_error(self, response: Response, outcome: Any) -> Iterator[Any]:
        yield from self.request_done(response.meta[META_CTX]["depth"])

    def request_done(self, level: int) -> Iterator[scrapy.Request]:
        """When a level has no open request left, expand the next (max_users mode)."""
        assert self.job is not None
        self.open_requests[level] -= 1
        if self.job.max_users is None or self.open_requests[level] > 0 or level >= self.job.depth:
            return
        found = self.found.pop(level, {})
        ordered: list[int] = []
        for uid in self.level_users.get(level, []):
            pages = found.get(uid, {})
            for page_no in sorted(pages):
                ordered.extend(pages[page_no])
        yield from self.expand(ordered, level + 1)


class FriendsSpider(NetworkSpider):
    name = "friends"
    direction = "friends"


class FollowersSpider(NetworkSpider):
    name = "followers"
    direction = "followers"
