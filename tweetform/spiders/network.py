"""``friends`` and ``followers``: follow networks to any depth, tweetf0rm's way.

``depth=1`` crawls the seed's list only; ``depth=2`` also each account in it,
and so on. Each user is expanded once per job (the job store's claim; in Redis, for a job without
``max_users``, the claim is made by the push of the user's first page: :meth:`JobStore.claims_at_push`). Without
``max_users`` users are expanded as soon as they are found; with it, expansion
goes level by level (see :mod:`tweetform.state.base`) so that exactly the first
``max_users`` users in breadth-first order are expanded.

With ``api=bluesky`` the same crawl runs on ``app.bsky.graph.getFollows``/``getFollowers``
(100 profiles a page, both data types): users are DIDs, claimed in the job state under
:func:`tweetform.api.bluesky.did_key`; a DID a page lists that is not well formed is
never expanded (it would become a file name).
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

import scrapy
from scrapy.http import Response

from tweetform.api import bluesky
from tweetform.api.endpoints import BLUESKY, V2_USER_FIELDS
from tweetform.job import JobArgs
from tweetform.meta import META_FOUND_BY, META_QID
from tweetform.spiders.base import META_CTX, UserSeededSpider

FIRST_PAGE_CTX = frozenset({"job", "params", "path_id", "key", "depth", "source"})


def ids_in_page(body: Any) -> list[Any]:
    """Account ids of one page of any of the four list endpoints (DIDs of a Bluesky page)."""
    if isinstance(body, dict) and ("follows" in body or "followers" in body):
        return [p.get("did") for p in bluesky.listed(body.get("follows") or body.get("followers")) if isinstance(p, dict)]
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

    def seed_user(self, job: JobArgs, uid: int) -> Iterable[scrapy.Request]:
        yield from self.expand(job, [uid], 1, claimer="seed")

    def expand(self, job: JobArgs, uids: list[Any], level: int, claimer: str,
               found_by: str = "") -> Iterator[scrapy.Request]:
        """First pages of ``uids`` at ``level``, for those claimed now (or, claimed at push, not known claimed);
        ``found_by``: the queue id of the page that found them (META_FOUND_BY)."""
        # Redis, no max_users: the push of each first page claims its user (the claim is the dupe filter of a user's
        # first page, decided at enqueue time, scrapy-redis's way); pages are built for users not known claimed.
        # The seeds are claimed here, always: their claim makes the job's claims layout (a job pushed again under
        # the id of one purged gets a new one)
        at_push = claimer != "seed" and self.store.claims_at_push(job)

        def claim(ids: list[Any]) -> list[Any]:
            return self.store.not_known_claimed(job, ids) if at_push else self.store.claim_users(job, ids, level, claimer)

        if job.api == BLUESKY:
            good = [d for d in dict.fromkeys(uids) if bluesky.is_did(d)]
            if len(good) < len(set(uids)):
                self.crawler.stats.inc_value("tweetform/bluesky/malformed_dids", len(set(uids)) - len(good))
            by_key = {bluesky.did_key(d): d for d in good}
            claimed = [by_key[k] for k in claim(list(by_key))]
        else:
            claimed = claim(list(dict.fromkeys(uids)))
        requests = [self.first_page(job, uid, level) for uid in claimed]
        if job.max_users is not None:  # level-by-level expansion tracks each level's requests
            self.store.requests_opened(job, level, [r.url for r in requests])
        if not at_push:  # else counted from the push's flags, for the users it claimed (state/redis/queue.py)
            self.crawler.stats.inc_value("tweetform/users/expanded", len(requests))
        elif found_by:  # pushed together, with the page's acknowledgement
            for request in requests:
                request.meta[META_FOUND_BY] = found_by
        yield from requests

    def first_page(self, job: JobArgs, uid: Any, level: int) -> scrapy.Request:
        ids_only = job.data_type == "ids"
        if job.api == BLUESKY:  # the AppView lists profiles either way: data_type names the bucket only
            endpoint = "app.bsky.graph.getFollows" if self.direction == "friends" else "app.bsky.graph.getFollowers"
            return self.api_request(job, endpoint, {"actor": uid, "limit": 100}, key=uid, depth=level, source=uid,
                                    priority=-level)
        if job.api == "2":
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
        return self.api_request(job, endpoint, params, key=str(uid), path_id=uid, depth=level, source=uid, priority=-level)

    # --- a queued first page is its user and level (the Redis queue keeps ~15 bytes, not ~750 of JSON) ---

    def pack_request(self, request: scrapy.Request) -> tuple[str, int] | None:
        """``"<user>,<level>[,<Scrapy's depth>]"`` and the user's claim key when ``request`` is exactly the first page
        :meth:`first_page` builds for them (checked by building it again), else None (queued as JSON)."""
        ctx = request.meta.get(META_CTX)
        if (not isinstance(ctx, dict) or ctx.keys() != FIRST_PAGE_CTX or request.dont_filter or request.method != "GET"
                or request.body or request.headers or request.cookies or request.cb_kwargs or request.flags):
            return None
        job = self.store.load(ctx["job"])
        uid, level = ctx["source"], ctx["depth"]
        if job is None or not isinstance(uid, str if job.api == BLUESKY else int) or not isinstance(level, int):
            return None
        again = self.first_page(job, uid, level)
        crawl_depth = request.meta.get("depth")  # Scrapy's own (DepthMiddleware), kept as it was
        if isinstance(crawl_depth, int):
            again.meta["depth"] = crawl_depth
        if (again.url != request.url or again.priority != request.priority or again.meta != request.meta
                or again.callback != request.callback or again.errback != request.errback):
            return None
        packed = f"{uid},{level}" if crawl_depth is None else f"{uid},{level},{crawl_depth}"
        return packed, bluesky.did_key(uid) if job.api == BLUESKY else uid

    def unpack_request(self, job_id: str, packed: str) -> scrapy.Request:
        """The first page :meth:`pack_request` packed (KeyError: its job is gone)."""
        job = self.store.load(job_id)
        if job is None:
            raise KeyError(f"job {job_id!r} is gone")
        uid, level, *crawl_depth = packed.split(",")  # a DID holds no comma
        request = self.first_page(job, uid if job.api == BLUESKY else int(uid), int(level))
        if crawl_depth:
            request.meta["depth"] = int(crawl_depth[0])
        return request

    def on_page(self, response: Response, body: Any) -> Iterator[Any]:
        job = self.job_of(response)
        ctx = response.meta[META_CTX]
        level, source = ctx["depth"], ctx["source"]
        nxt = self.next_page(response, body)
        if nxt is not None:
            if job.max_users is not None:
                self.store.requests_opened(job, level, [nxt.url])
            yield nxt
        if level < job.depth:
            ids = ids_in_page(body)
            if job.max_users is None:
                yield from self.expand(job, ids, level + 1, claimer=response.request.url,
                                       found_by=response.meta.get(META_QID, ""))
            else:
                claim = bluesky.did_key(source) if job.api == BLUESKY else source
                self.store.record_found(job, level, claim, ctx.get("page_no", 0), ids)
        yield from self.request_done(job, level, response.request.url)

    def on_account_error(self, response: Response, outcome: Any) -> Iterator[Any]:
        yield from self.request_done(self.job_of(response), response.meta[META_CTX]["depth"], response.request.url)

    def request_done(self, job: JobArgs, level: int, page: str) -> Iterator[scrapy.Request]:
        """When every request of a level has finished, expand the next one (max_users mode)."""
        if job.max_users is None:
            return
        next_level = self.store.request_done(job, level, page)
        if next_level is not None and level < job.depth:
            yield from self.expand(job, next_level, level + 1, claimer=f"level:{level + 1}")


class FriendsSpider(NetworkSpider):
    name = "friends"
    direction = "friends"


class FollowersSpider(NetworkSpider):
    name = "followers"
    direction = "followers"
