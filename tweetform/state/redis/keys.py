"""Every Redis key tweetform uses, built in one place (documented in README.md).

All keys start with ``tweetform:`` so one Redis can be shared with other tools.
Redis holds job arguments, queued requests, fingerprints, progress counters and
credential *aliases* — never a credential secret.
"""

from __future__ import annotations

PREFIX = "tweetform"


def jobs_inbox(spider: str) -> str:
    """LIST of JSON job messages for a spider (scrapy-redis's start key)."""
    return f"{PREFIX}:{spider}:start_urls"


def dead_letter() -> str:
    """LIST of malformed job messages with the reason each was refused."""
    return f"{PREFIX}:deadletter"


def queue(spider: str, endpoint: str) -> str:
    """ZSET of requests waiting for one endpoint (score: priority, then FIFO): a member holds one or more requests of a
    job, "<job>\t<first request id>\t<payload>\n<payload>…" (lua/queue_push.lua; a payload is JSON or packed arguments)."""
    return f"{PREFIX}:{spider}:requests:{endpoint}"


def queue_endpoints(spider: str) -> str:
    """SET of the endpoints that have a request queue (added by the push script): what workers
    look at for work, instead of scanning the keyspace."""
    return f"{PREFIX}:{spider}:endpoints"


def queue_sequence(spider: str) -> str:
    """Counter giving queued requests their FIFO order within a priority."""
    return f"{PREFIX}:{spider}:requests:seq"


def in_flight(spider: str) -> str:
    """HASH request id -> JSON {w: worker, l: lease token, t: taken at, q: queue, s: score, d: member, j: job}."""
    return f"{PREFIX}:{spider}:inflight"


def dupefilter(spider: str, job: str) -> str:
    """HASH n, lvl, split, load: the layout of the request fingerprints seen in one job (a new job id
    crawls again), in HASHes ``<this key>:<i>`` fingerprint (20 bytes) -> "" (compact.py)."""
    return f"{PREFIX}:{spider}:dupes:{job}"


def dupefilter_before(spider: str, job: str) -> str:
    """The SET the fingerprints were kept in before (tweetform before issue 15): expired and purged with the job."""
    return f"{PREFIX}:{spider}:dupefilter:{job}"


def job(job_id: str) -> str:
    """HASH: args (JSON), state (running|paused|budget|done|cancelled), created, finished_at, plan,
    and the request counters queued, inflight, parked (kept by the queue scripts)."""
    return f"{PREFIX}:job:{job_id}"


def job_record(job_id: str) -> list[str]:
    """The keys an ended job keeps after TWEETFORM_JOB_STATE_TTL (what ``scrapy status`` and ``scrapy wait``
    read: its hash, counters and money); every other key of the job expires (``control.expire_ended``, and
    whatever a late page, claim, hold or push creates afterwards gets the TTL the job's hash records)."""
    return [job(job_id), job_progress(job_id), budget(job_id)]


def job_progress(job_id: str) -> str:
    """HASH of counters: pages, items, errors, users_expanded."""
    return f"{PREFIX}:job:{job_id}:progress"


def jobs() -> str:
    """ZSET of job ids by creation time."""
    return f"{PREFIX}:jobs"


def budget(job_id: str) -> str:
    """HASH of a job's money, integer micro-dollars: budget, spent, reserved (tweetform.cost)."""
    return f"{PREFIX}:job:{job_id}:budget"


def budget_reserved(job_id: str) -> str:
    """ZSET of a job's open budget reservations, ``<token>|<micro-dollars>`` by expiry time (tweetform.cost)."""
    return f"{PREFIX}:job:{job_id}:budget:reserved"


def cost_seen(app: str, kind: str, day: str) -> str:
    """HASH n, lvl, split, load: the layout of the resource ids billed to an app on a UTC day, in SETs
    ``<this key>:<i>`` of ids (intsets, compact.py): the cost accounting's dedupe, expiring after 2 days."""
    return f"{PREFIX}:cost:billed:{app}:{kind}:{day}"


COST_SEEN_BEFORE = f"{PREFIX}:cost:seen:"


def cost_seen_before(app: str, kind: str, day: str, bucket: int) -> str:
    """One of the 1,024 SETs of ids billed to an app on a day before issue 15 (``migrate.py`` folds them
    into :func:`cost_seen`)."""
    return f"{COST_SEEN_BEFORE}{app}:{kind}:{day}:{bucket}"


def cost_seen_before_parts(key: str) -> tuple[str, str, str] | None:
    """(app, kind, day) of a :func:`cost_seen_before` key, or None for another key."""
    if not key.startswith(COST_SEEN_BEFORE):
        return None
    parts = key[len(COST_SEEN_BEFORE):].rsplit(":", 3)  # an app alias may hold a colon
    if len(parts) != 4 or not parts[3].isdigit():
        return None
    return parts[0], parts[1], parts[2]


def migrations() -> str:
    """HASH of the upgrades done once per Redis (``migrate.py``): name -> when."""
    return f"{PREFIX}:migrations"


def parked(job_id: str) -> str:
    """ZSET of a paused job's requests (JSON {q: queue key, d: queue member, n: requests it holds}), back on resume."""
    return f"{PREFIX}:job:{job_id}:parked"


def expanded(job_id: str) -> str:
    """HASH n (users claimed), lvl, split, load, marks (its claims mark queued first pages: queue_push.lua): the layout of a job's claims, each user once per job;
    the users are in HASHes ``<this key>:<i>`` user id -> 32-bit tag of its claimer (seen.py)."""
    return f"{PREFIX}:job:{job_id}:expanded"


def expanded_buckets(job_id: str) -> str:
    """The prefix of a job's claim buckets: ``<prefix><i>``."""
    return f"{expanded(job_id)}:"


def level_opened(job_id: str, level: int) -> str:
    """SET of request keys opened at a network level (max_users mode)."""
    return f"{PREFIX}:job:{job_id}:level:{level}:opened"


def level_done(job_id: str, level: int) -> str:
    """SET of request keys finished at a network level."""
    return f"{PREFIX}:job:{job_id}:level:{level}:done"


def level_users(job_id: str, level: int) -> str:
    """ZSET of a level's users by expansion order."""
    return f"{PREFIX}:job:{job_id}:level:{level}:users"


def level_sequence(job_id: str, level: int) -> str:
    """Counter giving a level's users their expansion order (scores of ``level_users``)."""
    return f"{level_users(job_id, level)}:seq"


def level_keys(job_id: str, depth: int) -> list[str]:
    """Every key of a job's network levels (max_users mode), levels 0 … depth + 1."""
    return [key for level in range(depth + 2) for key in (level_opened(job_id, level), level_done(job_id, level),
                                                          level_users(job_id, level), level_sequence(job_id, level),
                                                          level_found(job_id, level))]


def level_found(job_id: str, level: int) -> str:
    """HASH "<user>:<page>" -> JSON ids found by one page of a level."""
    return f"{PREFIX}:job:{job_id}:level:{level}:found"


def written(job_id: str) -> str:
    """HASH n, lvl, split, load: the layout of the page ids written (exactly-once output across
    workers), in HASHes ``<this key>:<i>`` page id (10 bytes) -> "" (compact.py)."""
    return f"{PREFIX}:job:{job_id}:written-pages"


def written_before(job_id: str) -> str:
    """The SET the written page ids were kept in before (tweetform before issue 15): expired with the job."""
    return f"{PREFIX}:job:{job_id}:written"


def workers() -> str:
    """HASH worker id -> JSON {host, pid, spiders, started}."""
    return f"{PREFIX}:workers"


HEARTBEAT_PARTS = (f"{PREFIX}:worker:", ":alive")


def heartbeat(worker: str) -> str:
    """STRING with a short TTL, refreshed while the worker lives."""
    return HEARTBEAT_PARTS[0] + worker + HEARTBEAT_PARTS[1]


def control(worker: str) -> str:
    """STRING "stop" asks one worker to shut down (SHUTDOWN_NODE)."""
    return f"{PREFIX}:worker:{worker}:control"


def bucket_counts() -> str:
    """HASH bucket -> pages written."""
    return f"{PREFIX}:buckets"


def quota(lane: str, endpoint: str) -> str:
    """HASH limit, reset, remaining, in_flight of one credential lane (alias:kind) × endpoint."""
    return f"{PREFIX}:quota:{lane}:{endpoint}"


# --- scrapy collect: pages on their way to one output directory (tweetform/collect/) ---


def page_stream(job_id: str) -> str:
    """STREAM of a job's pages waiting for ``scrapy collect`` (fields prov, raw or item, n)."""
    return f"{PREFIX}:job:{job_id}:pages"


def pages_waiting(job_id: str) -> str:
    """HASH pages, bytes (what waits in the job's page stream; the cap is on bytes), peak (most bytes ever waiting)."""
    return f"{PREFIX}:job:{job_id}:pages:waiting"


def collect_jobs() -> str:
    """SET of job ids that have a page stream (what the collector reads)."""
    return f"{PREFIX}:collect:jobs"


def collect_lock() -> str:
    """STRING (TTL) JSON {token, fence, host, pid, dir}: the one collector writing the pages."""
    return f"{PREFIX}:collect:lock"


def collect_fence() -> str:
    """Counter: the fencing token of each collector lock taken (it only grows)."""
    return f"{PREFIX}:collect:fence"


JOB_ID = "{job}"  # where a job's id goes in job_templates()


def job_templates() -> str:
    """The keys of a job the Lua scripts reach from a job id they meet (a queued request's, an in-flight
    entry's): job hash, progress, starting set, parked requests, pages waiting — one a line, ``{job}`` for
    the id, in ``job_common.lua``'s order (the scripts build no key name themselves)."""
    return "\n".join((job(JOB_ID), job_progress(JOB_ID), job_starting(JOB_ID), parked(JOB_ID), pages_waiting(JOB_ID)))


def job_starting(job_id: str) -> str:
    """SET of workers queuing a job's seeds: the job is not done while any does."""
    return f"{job(job_id)}:starting"


def worker_holds(worker: str) -> str:
    """SET of the job ids whose seeds a worker is queuing (its holds end with it when it dies)."""
    return f"{PREFIX}:worker:{worker}:holds"


def jobs_processing(spider: str, worker: str) -> str:
    """LIST of job messages a worker took and has not finished queuing (given back if it dies)."""
    return f"{jobs_inbox(spider)}:processing:{worker}"


def jobs_processors(spider: str) -> str:
    """SET of the workers that may have a ``jobs_processing`` list (so a dead one's is found without a SCAN)."""
    return f"{jobs_inbox(spider)}:processors"


def deliveries(spider: str) -> str:
    """HASH request id -> times it was handed over (its worker died or stalled)."""
    return f"{in_flight(spider)}:deliveries"


def dead_requests(spider: str) -> str:
    """LIST (capped) of requests handed over too often, with the reason (poison requests)."""
    return f"{PREFIX}:{spider}:deadletter"
