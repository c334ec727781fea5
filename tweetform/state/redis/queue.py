"""The shared request queue: scrapy-redis's queue, per endpoint, with in-flight tracking.

scrapy-redis deletes a request from Redis when a worker pops it, so a killed
worker loses it (and, its fingerprint being seen, it is never fetched again).
Here a pop *moves* the request into an in-flight hash, tagged with the worker,
in one Lua script (``lua/queue_pop.lua``); the entry is removed only when the
request's callback output has been consumed (:meth:`InFlightQueue.finished`). A
worker whose heartbeat key expired is dead: :meth:`InFlightQueue.reap` puts its
in-flight requests back. Pushing with the dupe-filter check is one script too
(``lua/queue_push.lua``), so a fingerprint is never recorded for a request that
did not reach the queue.

A queued request costs Redis a few bytes when its spider can rebuild it from its arguments
(``pack_request`` / ``unpack_request``: a network crawl's first page is ``<user>,<level>``,
deduplicated by the job's claim of the user instead of a fingerprint); others are JSON. The push
script stores a job's requests pushed together as one ZSET member, their ids consecutive, and the
pop script hands them out one at a time: a member of its own would cost ~100 bytes per request.

From scrapy-redis's ``Base`` queue this keeps the constructor (server, spider,
key, serializer), ``_encode_request`` and the ``push`` / ``pop(timeout)`` /
``__len__`` / ``clear`` contract the scrapy-redis Scheduler calls. ``push``
buffers: the requests a callback yields go to Redis together with the request's
acknowledgement, after them in one script, in the worker's next pop's round trip,
before the pop (one wake-up of Redis for the three, not two); when no pop comes, in
a round trip of their own a moment later (the scheduler's :meth:`sync`).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Callable

import redis
from scrapy import Request
from scrapy.utils.request import request_from_dict
from scrapy_redis.queue import Base

from tweetform.api.endpoints import ENDPOINTS
from tweetform.meta import META_DELIVERY, META_FOUND_BY, META_LEASE, META_PART_OF, META_QID
from tweetform.quota.book import Reservation, min_interval
from tweetform.quota.gate import NO_ENDPOINT
from tweetform.state.redis import compact, keys, outbox, scripts
from tweetform.state.redis.connection import connects, redis_away, refusal, server_run
from tweetform.state.redis import serializer as json_serializer
from tweetform.state.redis.node import Delivery, lease_of, worker_id

logger = logging.getLogger(__name__)
ENDPOINT_REFRESH = 2.0  # seconds between looks for endpoint queues other workers created

PACKED = "~"  # a payload that is a request's arguments packed by its spider, not its JSON
SPLIT_PART = "+"  # an old qid so marked: a part split off that request, which stays in flight (lua/queue_push.lua)
#: a request as the push script takes it: queue's endpoint, job, priority, payload, old qid, old lease,
#: then how it is deduplicated: "f" (fingerprint), "c" (a claim made before), "k" (a claim made by the push)
#: or "", its layout, bucket prefix and key, and its level's pending counter (:func:`level_counter`)
Prepared = tuple[str, str, int, str, str, str, str, str, str, bytes, str]


def level_counter(request: Request) -> str:
    """The field of the job's progress hash counting its BFS level's requests not finished (``pending/<level>``:
    +1 when first queued, -1 when acknowledged, in the push and ack scripts), "" for a request with no level.
    A level with none pending and none before it has every request done, whichever worker did them
    (:meth:`tweetform.state.redis.jobs.RedisJobStore.last_complete_level`, the local queue's rule)."""
    depth = (request.meta.get("tweetform_ctx") or {}).get("depth")
    return f"pending/{depth}" if isinstance(depth, int) and not isinstance(depth, bool) else ""


def as_flags(answer: Any) -> bytes:
    """The push script's flags as bytes (a client decoding answers gives a str)."""
    return answer.encode() if isinstance(answer, str) else answer


def split_member(member: str) -> tuple[str, str, str]:
    """(job, request id, payload) of a queue member holding one request, "<job>\t<request id>\t<payload>"
    (an older tweetform's: "<job>\t<JSON>", its id inside the JSON, returned as ""; JSON never holds a raw tab)."""
    parts = member.split("\t", 2)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else (parts[0], "", parts[-1])


def claim_runs(items: list[Prepared]) -> list[list[Prepared]]:
    """``items`` in order, consecutive users' first pages deduplicated by claim (dedupe "c" or "k", no old request id)
    of one endpoint, job, priority, dedupe, claims layout and level counter grouped into runs (``lua/queue_push.lua``'s
    dedupe "C" or "K"); others alone."""
    runs: list[list[Prepared]] = []
    for item in items:
        last = runs[-1][-1] if runs else None
        if (last is not None and item[6] in ("c", "k") and not item[4] and not last[4]
                and item[:3] == last[:3] and item[6:9] == last[6:9] and item[10] == last[10]):
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs


def push_entries(items: list[Prepared], queue_key: Any, runs: bool = True) -> list[Any]:
    """The push script's arguments for ``items``: 12 a request, or 12 a run of claimed first pages (``runs``)."""
    args: list[Any] = []
    for run in claim_runs(items) if runs else [[item] for item in items]:
        endpoint, job, priority, payload, old, lease, mode, layout, prefix, key, level = run[0]
        if len(run) > 1:  # one entry for the run: Redis reads 12 arguments, not 12 per request
            payload, mode = "\n".join(r[3] for r in run), mode.upper()
            key = b",".join(r[9] for r in run)
        args += [queue_key(endpoint), endpoint, job, priority, payload, old, lease, mode, layout, prefix, key, level]
    return args


class InFlightQueue(Base):
    """scrapy-redis queue subclass: JSON, per endpoint, nothing lost when a worker dies."""

    def __init__(self, server: Any, spider: Any, key: str, serializer: Any = None) -> None:
        super().__init__(server, spider, key, serializer or json_serializer)
        self.worker = worker_id(spider.crawler)
        self.outbox = outbox.for_crawler(spider.crawler)  # write-only calls: first in this queue's round trips
        self.name = spider.name
        self._push = scripts.load(server, "queue_push")
        self._pop = scripts.load(server, "queue_pop")
        self._reap = scripts.load(server, "queue_reap")
        self._refused_logged = float("-inf")  # when a Redis error answer to a push was last logged
        self._reclaim = scripts.load(server, "queue_reclaim")
        self._ack = scripts.load(server, "queue_ack")
        settings = spider.crawler.settings
        self.max_deliveries = settings.getint("TWEETFORM_MAX_DELIVERIES")
        self.dead_letter_max = settings.getint("TWEETFORM_DEAD_LETTER_MAX")
        self.endpoints: set[str] = set()
        self.held: set[str] = set()  # request ids this worker took and has not finished
        self.unacked: dict[str, tuple[str, str]] = {}  # finished (request id -> lease, level counter), to remove from in-flight at the next sync
        self.unsent: list[Prepared] = []  # pushed, not yet in Redis
        self.found: dict[str, list[Prepared]] = {}  # a page's request id -> "k" first pages it found, sent with its ack
        self.known: list[str] = []
        self._known_at = 0.0
        self._marks: dict[str, bool] = {}  # job -> its claims mark queued first pages (claims_mark_queued)
        self._claims: Any = False  # the job store, when it claims users at push (RedisJobStore.claims_at_push)
        self._dupe_load: int | None = None  # the dupe filter's bucket load on this server (compact.py)
        self._indexed = False  # queues of an older tweetform added to the endpoints index (index_queues)
        self._turn = 0
        self._states: dict[str, tuple[str, float]] = {}
        self.dupefilter: Any = None
        self.gate: Any = None
        self.stats: Any = None
        self.on_redis_down: Any = lambda: None
        self.on_redis_back: Any = lambda: None

    def bind(self, dupefilter: Any, gate: Any, stats: Any) -> None:
        """What the scheduler shares with its queue: the job dupe filter, the quota gate, stats."""
        self.dupefilter, self.gate, self.stats = dupefilter, gate, stats

    def queue_key(self, endpoint: str) -> str:
        return keys.queue(self.name, endpoint)

    # --- pushing ------------------------------------------------------------------------

    def push(self, request: Request) -> None:
        """Buffer a request; the buffer goes to Redis in one round trip (with the next pop, or sync).
        A first page whose push claims its user waits for the ack of the page that found it (META_FOUND_BY): the
        page's users are all claimed in one step, none at a deeper level by a page of theirs fetched meanwhile."""
        found_by = request.meta.pop(META_FOUND_BY, None)
        item = self.prepare(request)
        if item[6] == "k" and found_by in self.held:
            self.found.setdefault(found_by, []).append(item)
        else:
            self.unsent.append(item)
        # no flush here: a callback's requests go with its acknowledgement in the next pop's round trip;
        # others (retries, job seeds) with the next pop, sync or heartbeat

    def prepare(self, request: Request) -> Prepared:
        """A request as queued: its spider's packed arguments when it has them (a few bytes), else its JSON.
        It leaves this worker: the push script gives it its new id; whether it is new to its job is decided
        there too, by its claim (a claimed user's first page, packed with the user's id) or its fingerprint."""
        old = request.meta.pop(META_QID, "")
        old_lease = request.meta.pop(META_LEASE, "") if old else ""
        part_of = request.meta.pop(META_PART_OF, None)  # split off a request this worker holds (the push script's "+")
        if part_of and not old:
            old, old_lease = SPLIT_PART + part_of[0], part_of[1]
        given_back = request.meta.pop(META_DELIVERY, None)  # a copy of a request this worker took (its retry, a split)
        if given_back is not None:
            given_back.retried = True  # the original's pages not written yet: another worker may take this one first
        self.held.discard(old)
        self.found.pop(old, None)  # retried: the retry's page claims them all again
        endpoint = request.meta.get("tweetform_endpoint") or NO_ENDPOINT
        job = str((request.meta.get("tweetform_ctx") or {}).get("job", ""))
        packed = self._pack(request) if job else None
        payload = PACKED + packed[0] if packed else self._encode_request(request)
        mode, layout, prefix, key = "", "", "", b""
        at_push = bool(packed) and self.pushes_claim(job)  # the spider built it unclaimed: the push claims its user
        if packed and packed[1] is not None and not request.dont_filter and (at_push or self.claims_mark_queued(job)):
            mode = "k" if at_push else "c"
            layout, prefix, key = keys.expanded(job), keys.expanded_buckets(job), str(int(packed[1])).encode()
        elif self.dupefilter is not None:
            key, layout = self.dupefilter.fingerprint_and_key(request)
            if layout:
                mode, prefix = "f", compact.bucket_prefix(layout)
        return endpoint, job, request.priority, payload, old, old_lease, mode, layout, prefix, key, level_counter(request)

    def claims_store(self) -> Any:
        """The spider's job store when it claims users at push (RedisJobStore), else None."""
        if self._claims is False:
            store = getattr(self.spider, "store", None)
            self._claims = store if hasattr(store, "known_claims") else None
        return self._claims

    def pushes_claim(self, job: str) -> bool:
        """Whether the job's first pages are pushed unclaimed, their users claimed by the push ("k"): as the job store
        decided when the spider built them (:meth:`RedisJobStore.claims_at_push`), without asking Redis."""
        store = self.claims_store()
        return store is not None and store.pushes_claim(job)

    def claims_mark_queued(self, job: str) -> bool:
        """Whether the job's claims were made by code that marks a user's first page queued in them (their layout
        says ``marks``): a job an older tweetform started kept fingerprints instead, and goes on with them. Asked
        once per job; while Redis is away, fingerprints (exact either way)."""
        marks = self._marks.get(job)
        if marks is None:
            try:
                marks = self._marks[job] = self.server.hget(keys.expanded(job), "marks") is not None
            except redis.RedisError:
                return False
        return marks

    def flush_unsent(self, with_acks: bool = False) -> None:
        """Send the buffered requests (kept in memory while Redis is away); ``with_acks``: then,
        in the same round trip, acknowledge the finished requests (after their new requests)."""
        if not self.unsent:
            return
        batch = self.unsent[:]
        acks = dict(self.unacked) if with_acks else {}
        try:
            flags = self.push_flags(batch, acks)
        except redis.RedisError as exc:
            self.push_failed(exc, len(batch))
            return
        self.pushed(batch, acks, flags)

    def push_failed(self, exc: redis.RedisError, count: int) -> None:
        """A push that did not reach Redis, or that Redis refused: its requests stay in ``unsent``, sent again."""
        if redis_away(exc):
            self.on_redis_down()
        elif time.monotonic() - self._refused_logged > 10:  # an answer (OOM…): kept and retried, said plainly
            self._refused_logged = time.monotonic()
            logger.error("could not queue %d requests (%s); keeping them and retrying", count, refusal(exc))

    def pushed(self, batch: list[Prepared], acks: dict[str, tuple[str, str]], flags: bytes) -> None:
        """``batch`` (the first of ``unsent``) is in Redis, and ``acks`` acknowledged after it."""
        del self.unsent[: len(batch)]
        for qid in acks:
            self.unacked.pop(qid, None)
        self.claims_pushed(batch, flags)
        filtered = flags.count(b"0")  # a "k" first page refused as queued before ("3") was not expanded, not filtered
        if self.stats is not None and filtered:
            self.stats.inc_value("dupefilter/filtered", filtered)
        self.on_redis_back()

    def claims_pushed(self, items: list[Prepared], flags: bytes) -> None:
        """What the push's flags of "k" first pages say: users claimed now (counted as expanded: the spider did not
        claim them) and users known claimed in their job ("1", "2", "3": remembered by the job store, whose spider then
        builds no page for them); "0": the job's claims are gone, nothing to remember."""
        store = self.claims_store()
        learnt: dict[str, list[int]] = {}
        expanded = 0
        for item, flag in zip(items, flags):
            if item[6] != "k":
                continue
            if flag == 48:  # b"0"
                if store is not None:
                    store.known_claims.forget(item[1])
                continue
            expanded += flag == 50  # b"2"
            learnt.setdefault(item[1], []).append(int(item[9]))
        if expanded and self.stats is not None:
            self.stats.inc_value("tweetform/users/expanded", expanded)
        if store is not None:
            for job, ids in learnt.items():
                store.known_claims.learn(job, ids)

    def push_many(self, items: list[Prepared], acks: dict[str, tuple[str, str]] | None = None) -> list[bool]:
        """:meth:`push_flags`, each request's flag as queued or not."""
        return [flag in (49, 50) for flag in self.push_flags(items, acks)]  # b"1", b"2"

    def push_flags(self, items: list[Prepared], acks: dict[str, tuple[str, str]] | None = None) -> bytes:
        """Push prepared requests (with their fingerprint and dupe-filter layout) in one script call
        (``lua/queue_push.lua``), which then acknowledges ``acks`` (request id -> lease, level counter): one round trip.
        The push's flags, one per request (the script says what each means)."""
        results = scripts.execute(self.server, self.sync_commands(items, acks or {}), self.outbox)
        self.learn_endpoints(items)
        return as_flags(results[0]) if items else b""

    def sync_commands(self, items: list[Prepared], acks: dict[str, tuple[str, str]]) -> Callable[[Any], None]:
        """What queues ``items`` then acknowledges ``acks``, one script call: the push script acknowledges them after
        its requests are queued (a push Redis refuses, e.g. out of memory, acknowledges nothing: a page never leaves
        in-flight, nor its job ends, before its new requests are queued), or the ack script alone. One answer: the
        push's flags, or the number acknowledged."""
        templates = keys.job_templates()
        triples = [x for qid, (lease, level) in acks.items() for x in (qid, lease, level)]
        if items and self._dupe_load is None:
            self._dupe_load = compact.hash_load(self.server)
        args: list[Any] = [templates, self._dupe_load, len(acks), *triples, *push_entries(items, self.queue_key)]

        def build(pipe: Any) -> None:
            if items:
                scripts.in_pipeline(pipe, self._push, [keys.queue_sequence(self.name), keys.in_flight(self.name),
                                                       keys.queue_endpoints(self.name), keys.deliveries(self.name)], args)
            elif acks:
                scripts.in_pipeline(pipe, self._ack, [keys.in_flight(self.name), keys.deliveries(self.name)],
                                    [templates, *triples])

        return build

    def learn_endpoints(self, items: list[Prepared]) -> None:
        """The endpoints of requests just queued: this worker pops from them from now on."""
        pushed = {endpoint for endpoint, *_ in items} - self.endpoints
        if pushed:
            self.endpoints |= pushed
            if self.known:  # counted and taken at once, not after the next look at the index
                self.known = sorted(set(self.known) | pushed)

    def synced(self, batch: list[Prepared], acks: dict[str, tuple[str, str]], answer: Any) -> None:
        """Redis's answer to :meth:`sync_commands` sent in another call's round trip (the pop's), read on its own: a
        refused push keeps its requests and their acknowledgements (which it did not run), sent again (as
        :meth:`flush_unsent`); a refused acknowledgement is sent again."""
        if batch:
            if isinstance(answer, Exception):
                self.push_failed(answer, len(batch))
                return
            self.learn_endpoints(batch)
            self.pushed(batch, acks, as_flags(answer))
        elif isinstance(answer, Exception):  # kept in unacked: the next sync sends them again (an ack runs twice without harm)
            if time.monotonic() - self._refused_logged > 10:
                self._refused_logged = time.monotonic()
                logger.error("could not acknowledge finished requests (%s); retrying", refusal(answer))
        else:
            for qid in acks:
                self.unacked.pop(qid, None)

    # --- taking -------------------------------------------------------------------------

    def endpoint_names(self, fresh: bool = False) -> list[str]:
        """The endpoints with a queue: this worker's own at once, other workers' from the index every
        ``ENDPOINT_REFRESH`` seconds, or now when ``fresh`` (before deciding nothing is left)."""
        now = time.time()
        if fresh or now - self._known_at > ENDPOINT_REFRESH or not self.known:
            self.known = sorted(set(self.all_endpoints()) | self.endpoints)
            self._known_at = now
        return self.known

    def pop(self, timeout: int = 0) -> Request | None:
        """The next request whose endpoint has quota now (round-robin over endpoints), or None.
        What finished and what it produced go to Redis first, in the pop's own round trip (:meth:`pop_from`).

        scrapy-redis's blocking ``timeout`` is not used: a worker never blocks the reactor."""
        names = self.endpoint_names()
        pushing = {endpoint for endpoint, *_ in self.unsent} - set(names)
        if pushing:  # a request pushed by this round trip may be the one it takes
            names = sorted(set(names) | pushing)
        if not names:
            self.sync()  # acknowledgements alone: nothing to push, nothing to pop from
            return None
        order = names[self._turn % len(names):] + names[: self._turn % len(names)]
        self._turn += 1
        got = self.pop_from(order)
        if got is None:
            self.gate.sleep_until_quota(names)
            return None
        return got[1]

    def pop_from(self, endpoints: list[str]) -> tuple[str, Request] | None:
        """Take a request, and the quota it needs, in one script (``lua/queue_pop.lua``): the first
        request of the first endpoint queue with a request and quota, moved into in-flight. What :meth:`sync`
        would send goes before it in the same round trip (:meth:`pop_checking_claims`)."""
        book = self.gate.book
        lease, rid = uuid.uuid4().hex[:16], uuid.uuid4().hex
        script_keys = [keys.in_flight(self.name), keys.deliveries(self.name)]
        args = [self.worker, lease, keys.job_templates(), book.margin, book.hold, rid, server_run(self.server)]
        lanes_of: dict[str, list[Any]] = {}
        for name in endpoints:
            endpoint = ENDPOINTS.get(name)
            lanes = book.pool.lanes(endpoint) if endpoint is not None else []
            if endpoint is not None and not lanes and book.has_lanes(endpoint):
                self.gate.note_waiting(name)  # its credentials sit out (pinned proxies down): it waits
                continue
            lanes_of[name] = lanes
            bucket = endpoint.bucket if endpoint is not None else name  # Bluesky's methods share one pool per IP
            script_keys += [self.queue_key(name), *book.lane_keys(lanes, bucket)]
            args += [name, len(lanes), min_interval(name)]
        if not lanes_of:
            self.sync()  # nothing to pop: what waits goes alone
            return None
        sent, opened = time.monotonic(), connects(self.server)  # what the pipeline's check of its pages needs
        got = self.pop_checking_claims(script_keys, args, with_sync=True)
        if got[0] is None:
            for name in got[1:]:
                self.gate.note_waiting(name.decode() if isinstance(name, bytes) else name)
            return None
        name, member = (g.decode() if isinstance(g, bytes) else g for g in got[:2])
        lane = int(got[2])
        job, qid, payload = split_member(member)
        try:
            request = self.decode(job, payload)
        except KeyError as exc:  # its job was purged meanwhile: nothing to fetch, it leaves in-flight at the next sync
            logger.info("dropped a queued request: %s", exc)
            self.unacked[qid] = (lease, "")  # not counted at its level: it went with its job
            return None
        if qid:  # the push script's id (a JSON payload of an older tweetform carries its own)
            request.meta[META_QID] = qid
        request.meta[META_LEASE] = lease
        request.meta[META_DELIVERY] = Delivery(first=int(got[3]) == 0, sent=sent, connects=opened)
        self.held.add(request.meta.get(META_QID, ""))
        bucket = ENDPOINTS[name].bucket if name in ENDPOINTS else name
        self.gate.taken(name, request, Reservation(lanes_of[name][lane - 1], bucket, rid) if lane else True)
        return name, request

    def pop_checking_claims(self, script_keys: list[Any], args: list[Any], with_sync: bool = False) -> Any:
        """The pop script's answer; in the same round trip, after it, the claims layout's marks of each job whose
        claims the job store remembers (seen.KnownClaims): a job purged and pushed again under its id is seen
        before a page of it taken by this pop is expanded with the old job's claims. ``with_sync``: before the pop,
        what :meth:`sync` would send (the buffered requests, then the acknowledgements: one push script), so Redis queues
        a page's new requests before its acknowledgement and before the pop (which may take one of them): one round
        trip, not two. That answer is read on its own (:meth:`synced`): a push Redis refuses (its acknowledgements
        not run) is kept and sent again, and the request popped after it is still this worker's."""
        store = self.claims_store()
        watched = list(store.known_claims.jobs) if store is not None else []
        batch, acks = (self.unsent[:], dict(self.unacked)) if with_sync else ([], {})
        try:
            queue_sync = self.sync_commands(batch, acks)

            def build(pipe: Any) -> None:
                queue_sync(pipe)
                scripts.in_pipeline(pipe, self._pop, script_keys, args)
                for job in watched:
                    pipe.hget(keys.expanded(job), "marks")

            answers = scripts.execute(self.server, build, self.outbox, raise_on_error=False)
        except redis.RedisError as exc:
            if batch:
                self.push_failed(exc, len(batch))
            raise
        synced = int(bool(batch or acks))  # one answer: the push (with the acknowledgements) or the acknowledgements
        if synced:
            self.synced(batch, acks, answers[0])
        got, *marks = answers[synced:]
        for answer in (got, *marks):
            if isinstance(answer, Exception):
                raise answer
        for job, found in zip(watched, marks):
            store.known_claims.check(job, found)
        return got

    def _pack(self, request: Request) -> tuple[str, int | None] | None:
        """The spider's packed arguments of a request (``pack_request``), or None: queued as JSON."""
        pack = getattr(self.spider, "pack_request", None)
        packed = pack(request) if pack is not None else None
        if packed is not None and ("\t" in packed[0] or "\n" in packed[0]):
            raise ValueError(f"{self.name}.pack_request gave a tab or a newline: {packed[0][:80]!r}")
        return packed

    def decode(self, job: str, payload: str) -> Request:
        """A queued request: rebuilt by its spider from its packed arguments (``unpack_request``), or from its JSON."""
        if payload.startswith(PACKED):
            return self.spider.unpack_request(job, payload[len(PACKED):])
        return self._decode_request(payload)

    def _decode_request(self, encoded_request: Any) -> Request:
        return request_from_dict(self.serializer.loads(encoded_request), spider=self.spider)

    # --- finishing ----------------------------------------------------------------------

    def finished(self, requests: list[Request]) -> None:
        """Done, their outputs handled (the scheduler's AckAfterScraping says when): they leave
        in-flight at the next sync, after the requests they produced are queued."""
        for request in requests:
            qid = request.meta.get(META_QID)
            if qid:
                self.held.discard(qid)
                self.unacked[qid] = (request.meta.get(META_LEASE, ""), level_counter(request))
                self.unsent += self.found.pop(qid, [])

    def flush_acks(self) -> None:
        """Remove finished requests from in-flight (retried after Redis was away)."""
        if self.unacked:
            triples = [x for qid, (lease, level) in self.unacked.items() for x in (qid, lease, level)]
            scripts.execute(self.server, lambda pipe: scripts.in_pipeline(
                pipe, self._ack, [keys.in_flight(self.name), keys.deliveries(self.name)], [keys.job_templates(), *triples]), self.outbox)
            self.unacked.clear()

    def sync(self) -> None:
        """Queue what is waiting to be pushed, then mark finished requests done — in that
        order, so a request never leaves in-flight before the requests it produced are queued."""
        self.flush_unsent(with_acks=True)
        if not self.unsent:
            self.flush_acks()

    def reclaim_lost(self, min_age: float = 5.0) -> int:
        """Put back in-flight entries of this worker that it does not hold: a pop whose
        reply was lost when Redis went away leaves one behind."""
        return int(self._reclaim(keys=[keys.in_flight(self.name), keys.deliveries(self.name)],
                                 args=[self.worker, min_age, keys.job_templates(), *sorted(self.held | set(self.unacked))]))

    def reap(self, release_own: bool = False) -> tuple[int, list[Request]]:
        """Put back in-flight requests of dead workers (and this one's when it stops).

        Returns how many moved and the requests dead-lettered for being handed over
        ``TWEETFORM_MAX_DELIVERIES`` times (poison requests)."""
        prefix, suffix = keys.HEARTBEAT_PARTS
        if release_own:  # from now on this worker's pages of them are checked (their next holder may write them)
            lease_of(self.spider.crawler).release()
        got = scripts.execute(self.server, lambda pipe: scripts.in_pipeline(  # after the outbox: its pages' records first
            pipe, self._reap, [keys.in_flight(self.name), keys.dead_requests(self.name), keys.deliveries(self.name)],
            [prefix, suffix, self.worker if release_own else "", keys.job_templates(), self.max_deliveries, self.dead_letter_max]), self.outbox)[0]
        dead = []
        for member in got[1:]:
            try:
                job, qid, payload = split_member(member.decode() if isinstance(member, bytes) else member)
                request = self.decode(job, payload)
                if qid:
                    request.meta[META_QID] = qid
                dead.append(request)
            except (ValueError, KeyError, AttributeError, TypeError):
                logger.error("a dead-lettered request could not be decoded")
        return int(got[0]), dead

    # --- size -----------------------------------------------------------------------------

    def all_endpoints(self) -> list[str]:
        """The endpoints with a queue, from their index (``keys.queue_endpoints``, kept by the push script)."""
        if not self._indexed:
            self.index_queues()
        return sorted(e.decode() if isinstance(e, bytes) else e for e in self.server.smembers(keys.queue_endpoints(self.name)))

    def index_queues(self) -> None:
        """Once per worker: queues pushed before the index existed (an older tweetform) join it."""
        prefix = keys.queue(self.name, "")
        found = [k[len(prefix):] for k in (key.decode() if isinstance(key, bytes) else key
                                           for key in self.server.scan_iter(match=prefix + "*", count=500))]
        found = [e for e in found if e != "seq"]
        if found:
            self.server.sadd(keys.queue_endpoints(self.name), *found)
        self._indexed = True

    def __len__(self) -> int:
        """Queue members (each holds one or more requests) and this worker's unsent requests, 0 when nothing
        is queued; Redis away: only those. ``control.queues`` counts the requests themselves."""
        try:
            pipe = self.server.pipeline(transaction=False)
            for endpoint in self.endpoint_names():
                pipe.zcard(self.queue_key(endpoint))
            return sum(pipe.execute()) + len(self.unsent)
        except redis.RedisError:
            self.on_redis_down()
            return len(self.unsent) or 1  # not known: do not let the spider close

    def in_flight_count(self) -> int:
        return int(self.server.hlen(keys.in_flight(self.name)))

    def clear(self) -> None:
        for endpoint in self.all_endpoints():
            self.server.delete(self.queue_key(endpoint))
