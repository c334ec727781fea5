"""A job's claimed users in a few bytes each: exact, in small hashes Redis keeps compact.

A network crawl claims every user it expands (:meth:`RedisJobStore.claim_users`): each
once per job, and again only by the same claimer (its page fetched twice after a worker
died). One big HASH user id -> claimer costs ~245 bytes per user (a hashtable entry,
two strings, the claimer's 12-character digest). Here the users are spread over many
small hashes ``<keys.expanded(job)>:<i>`` that Redis stores as *listpacks* while they
have at most ``hash-max-listpack-entries`` fields (512 in Redis 7's defaults and
Debian's redis.conf, 128 in some configurations): a field is the id itself (an integer:
5–10 bytes with its length byte), the value a 32-bit tag of the claimer (6 bytes), and the
key's own ~100 bytes are shared by a hundred users. About 20 bytes per user in all
(``bench/seen_memory.py``; ``tests/test_state_redis_seen.py`` holds it under 32).

The buckets grow by linear hashing (``lua/lhash.lua``): one bucket is split in two
for every ``load`` claims, so the average stays at ``load`` users and the fullest (not
yet split this round) near ``2 × load``; ``load`` is a quarter of the server's listpack
limit, fixed by the job's first claim so every worker uses the same layout. Lookups are
exact: a user is in exactly one bucket, under its own id. Two claimers share a tag with
probability 2^-32; then the second one's re-claim would expand the user again, and the
push script drops the repeated request: once a user's first page is queued (``lua/queue_push.lua``), its
tag is negated in place, so the page is queued once per job with no fingerprint, and a re-claim of a
user whose page is queued returns nothing.

A job without ``max_users`` claims here only its seeds: a user its pages find is claimed by the push of
their first page (``lua/queue_push.lua``, dedupe "k"), in the same step that queues it, with the value
``-1`` (claimed and queued: nothing re-claims it), so a page's ids are looked up once, not twice;
:class:`KnownClaims` keeps what the pushes said in the worker, so their pages are not built again.

The layout hash ``keys.expanded(job)`` holds ``n`` (users claimed), ``lvl``, ``split``
and ``load`` (``lua/lhash.lua``'s), and ``marks`` (the layout's birth); :func:`bucket_keys` lists the
buckets for expiry and purge.
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

import redis

from tweetform.state.redis import keys, scripts

DEFAULT_LISTPACK_ENTRIES = 128  # when CONFIG GET is refused (managed Redis): the smaller common limit
MAX_LOAD = 32  # users per bucket on average: a lookup scans its bucket (32: ~22 B/user, 64: ~21 B but slower)


def claimer_tag(claimer: str) -> int:
    """A claimer (page URL, ``seed``, ``level:N``) as 32 bits: what each claimed user stores."""
    return int.from_bytes(hashlib.sha1(claimer.encode()).digest()[:4], "big")


def bucket_load(server: Any) -> int:
    """Average users per bucket so the fullest bucket stays a listpack on this server."""
    try:
        found = server.config_get("hash-max-listpack-entries")
        limit = int(next(iter(found.values()))) if found else DEFAULT_LISTPACK_ENTRIES
    except (redis.ResponseError, ValueError, StopIteration):
        limit = DEFAULT_LISTPACK_ENTRIES
    return max(8, min(MAX_LOAD, limit // 4))


class SeenUsers:
    """Claims of users per job (``lua/seen_claim.lua``), shared by every worker."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self._claim = scripts.load(server, "seen_claim")
        self._load: int | None = None

    def claim(self, job_id: str, uids: Sequence[int], claimer: str, max_users: int | None = None,
              order: tuple[str, str] | None = None) -> list[int]:
        """The users of ``uids``, in order, claimed now: not claimed before in this job (within
        ``max_users``), or claimed before by this same ``claimer``. With ``max_users``, each new
        user is also added to the ZSET ``order[0]`` in claim order (counter ``order[1]``)."""
        if not uids:
            return []
        if self._load is None:
            self._load = bucket_load(self.server)
        if max_users is not None and order is None:
            raise ValueError("a claim with max_users needs the keys of its claim order")
        order_keys = list(order) if order else [keys.expanded(job_id)] * 2  # not touched without max_users
        ids = [int(u) for u in uids]
        flags = self._claim(
            keys=[keys.expanded(job_id), *order_keys],
            args=[claimer_tag(claimer), "" if max_users is None else max_users, self._load, ",".join(map(str, ids)),
                  keys.expanded_buckets(job_id)],
        )
        return [uid for uid, flag in zip(ids, flags) if flag == 49]  # b"1"

    def count(self, job_id: str) -> int:
        """Users claimed in the job."""
        return int(self.server.hget(keys.expanded(job_id), "n") or 0)


HASH_PRIME = 2**31 - 1


def bucket_index(uid: int, lvl: int, split: int) -> int:
    """The bucket of a user id in a layout (``lua/lhash.lua``'s lh_hash_decimal, in exact integers)."""
    h = uid % HASH_PRIME * 48271 % HASH_PRIME
    b = h % 2**lvl
    return h % 2 ** (lvl + 1) if b < split else b


def bucket_keys(server: Any, job_id: str) -> list[str]:
    """Every bucket key of a job's claims (the layout hash itself excepted)."""
    lvl, split = server.hmget(keys.expanded(job_id), "lvl", "split")
    if lvl is None:
        return []
    buckets = 2 ** int(lvl) + int(split or 0)
    return [f"{keys.expanded_buckets(job_id)}{i}" for i in range(buckets)]


KNOWN_CLAIMS_MAX = 1 << 18  # ids remembered, all jobs together: ~68 B each in a Python set (its int and slot): ~18 MB at most
KNOWN_CLAIMS_JOBS = 4  # jobs remembered (the least recently used goes): each is checked with every pop (queue.py)


class KnownClaims:
    """Users this worker knows are claimed in a job, so a page's first pages are not built, nor their ids sent, for them.

    A job without max_users claims a user in the push of their first page (``lua/queue_push.lua`` "k"); the push's
    flag says the user is claimed now or was before, and a claim is never undone within a job, so what is here is
    exact: an id missing here is only asked of Redis. It is a cache per job, bounded (:data:`KNOWN_CLAIMS_MAX` ids,
    :data:`KNOWN_CLAIMS_JOBS` jobs). A job purged (or expired once ended) and pushed again under its id is
    another job: each job's ids are kept with its layout's ``marks`` (its birth, ``lua/seen_claim.lua``), read
    again right after every pop (:meth:`tweetform.state.redis.queue.InFlightQueue.pop_from`), so a page of the new
    job is never expanded with the old job's ids. A Redis that restarted may come back without claims it reported
    (writes after its last fsync or snapshot lost): the job store forgets every id when its client opens a new
    connection (:meth:`tweetform.state.redis.jobs.RedisJobStore.not_known_claimed`).
    """

    def __init__(self, limit: int = KNOWN_CLAIMS_MAX, jobs: int = KNOWN_CLAIMS_JOBS) -> None:
        self.limit, self.max_jobs = limit, jobs
        self.jobs: dict[str, tuple[bytes, set[int]]] = {}  # job -> (its layout's marks, ids); least recent first
        self.size = 0

    def watch(self, job_id: str, marks: bytes) -> None:
        """Remember claims of ``job_id`` (whose layout's marks are ``marks``) from now on; the most recent job."""
        found = self.jobs.pop(job_id, None)
        if found is None:
            found = (marks, set())
            while len(self.jobs) >= self.max_jobs:
                self.forget(next(iter(self.jobs)))
        self.jobs[job_id] = found

    def unknown(self, job_id: str, ids: list[Any]) -> list[Any]:
        """``ids`` not known claimed in the job, in order."""
        found = self.jobs.get(job_id)
        return [i for i in ids if i not in found[1]] if found else ids

    def learn(self, job_id: str, ids: list[int]) -> None:
        """``ids`` are claimed in the job (a push's flags said so); full: every job's ids are dropped, learnt again."""
        found = self.jobs.get(job_id)
        if found is None or not ids:
            return
        known = found[1]
        if self.size + len(ids) > self.limit:
            self.clear()
        before = len(known)
        known.update(ids)
        self.size += len(known) - before

    def clear(self) -> None:
        """Every job's ids forgotten (the jobs and their marks kept)."""
        for _, held in self.jobs.values():
            held.clear()
        self.size = 0

    def check(self, job_id: str, marks: bytes | None) -> None:
        """The job's layout's marks read now: another value (or none: purged) means another job under this id."""
        found = self.jobs.get(job_id)
        if found is not None and found[0] != marks:
            self.forget(job_id)
            if marks is not None:  # the new job's ids from now on
                self.jobs[job_id] = (marks, set())

    def forget(self, job_id: str) -> None:
        found = self.jobs.pop(job_id, None)
        if found is not None:
            self.size -= len(found[1])
