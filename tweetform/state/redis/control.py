"""What ``scrapy status`` shows and what ``scrapy admin`` does, read from and written to Redis.

tweetf0rm's node commands map here: LIST_NODES → :func:`nodes`, NODE_QSIZES →
:func:`queues`, CLEAR_NODE_QUEUES → :func:`clear_queue`, SHUTDOWN_NODE →
:func:`stop_node`; jobs can be paused, resumed and cancelled.
"""

from __future__ import annotations

import json
import time
from typing import Any

from tweetform.state.base import FINAL_STATES, GONE
from tweetform.state.redis import compact, keys, scripts, seen

ENDED = FINAL_STATES | {"budget_exhausted"}  # the cost budget's name for BUDGET


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def nodes(server: Any) -> list[dict[str, Any]]:
    out = []
    for worker, raw in server.hgetall(keys.workers()).items():
        info = json.loads(raw)
        info["worker"] = _s(worker)
        info["alive"] = bool(server.exists(keys.heartbeat(info["worker"])))
        out.append(info)
    return sorted(out, key=lambda n: (n.get("host", ""), n.get("pid", 0), n.get("spider", "")))


def queue_keys(server: Any, spider: str) -> list[str]:
    prefix = keys.queue(spider, "")
    return [k for k in (_s(k) for k in server.scan_iter(match=prefix + "*", count=500)) if k != keys.queue_sequence(spider)]


def queued_requests(server: Any, queue_key: str) -> int:
    """Requests in an endpoint queue: a member holds one or more, one a line (queue_push.lua)."""
    return sum(1 + member.count(b"\n" if isinstance(member, bytes) else "\n") for member, _ in server.zscan_iter(queue_key, count=500))


def queues(server: Any, spiders: list[str]) -> list[dict[str, Any]]:
    """Each spider's queued requests, in flight and waiting job messages (``spiders``: the project's, Scrapy's spider loader)."""
    out = []
    for spider in spiders:
        per_endpoint = {k[len(keys.queue(spider, "")):]: queued_requests(server, k) for k in queue_keys(server, spider)}
        out.append({
            "spider": spider,
            "queued": sum(per_endpoint.values()),
            "by_endpoint": {k: v for k, v in per_endpoint.items() if v},
            "in_flight": int(server.hlen(keys.in_flight(spider))),
            "inbox": int(server.llen(keys.jobs_inbox(spider))),
        })
    return out


def jobs(server: Any, limit: int = 50) -> list[dict[str, Any]]:
    """The most recent jobs' rows (``plan``: the plan saved by ``scrapy push --plan``, as saved; ``scrapy status``
    adds what is left of it and the job's money, from the layers above this one)."""
    out = []
    for job_id in server.zrevrange(keys.jobs(), 0, limit - 1):
        job_id = _s(job_id)
        meta = {_s(k): _s(v) for k, v in server.hgetall(keys.job(job_id)).items()}
        args = json.loads(meta.get("args", "{}"))
        progress = {_s(k): int(v) for k, v in server.hgetall(keys.job_progress(job_id)).items()}
        out.append({
            "job": job_id,
            "plan": json.loads(meta["plan"]) if meta.get("plan") else None,
            "spider": args.get("spider"),
            "state": meta.get("state", "?"),
            "created": float(meta.get("created", 0) or 0),
            "finished_at": float(meta["finished_at"]) if meta.get("finished_at") else None,
            "queued": max(0, int(meta.get("queued", 0) or 0)),
            "in_flight": max(0, int(meta.get("inflight", 0) or 0)),
            "parked": max(0, int(meta.get("parked", 0) or 0)),
            "pages": progress.get("pages", 0),
            "errors": progress.get("errors", 0),
            "failed": progress.get("failed", 0),
            "users_expanded": int(server.hget(keys.expanded(job_id), "n") or 0),  # seen.py's count
            # collect mode: pages not yet on the collector's disk (the job is not done before they are)
            "collect_waiting": dict(zip(("pages", "bytes"), (int(x or 0) for x in server.hmget(keys.pages_waiting(job_id), "pages", "bytes")))),
            "args": args,
        })
    return out


def buckets(server: Any) -> dict[str, int]:
    return {_s(k): int(v) for k, v in server.hgetall(keys.bucket_counts()).items()}


def quota(server: Any) -> list[dict[str, Any]]:
    out = []
    for key in server.scan_iter(match=keys.quota("*", "*"), count=500, _type="hash"):  # not the :inflight zsets
        key = _s(key)
        lane, _, endpoint = key.split(":", 2)[2].partition(":/")  # "<alias>:<kind>:/<endpoint>"
        state = {_s(k): _s(v) for k, v in server.hgetall(key).items()}
        if "srem" in state:  # stored as the lowest remaining the API reported this window
            remaining = state.pop("srem")
            reset = float(state.get("reset") or 0)
            state["remaining"] = state["limit"] if state.get("limit") and reset and time.time() >= reset else remaining
        out.append({"lane": lane, "endpoint": "/" + endpoint, **state})
    return sorted(out, key=lambda q: (q["endpoint"], q["lane"]))


def dead_letters(server: Any) -> int:
    return int(server.llen(keys.dead_letter()))


def snapshot(server: Any, spiders: list[str]) -> dict[str, Any]:
    return {
        "time": time.time(),
        "nodes": nodes(server),
        "queues": queues(server, spiders),
        "dead_letter": dead_letters(server),
        "jobs": jobs(server),
        "buckets": buckets(server),
        "quota": quota(server),
    }


# --- admin ----------------------------------------------------------------------------------


def set_job_state(server: Any, job_id: str, state: str) -> bool:
    """Pause, resume or cancel in one script (``lua/job_state.lua``); False for an unknown job."""
    return bool(scripts.load(server, "job_state")(keys=[keys.job(job_id)], args=[state, job_id, keys.job_templates()]))


def job_ended(server: Any, job_id: str) -> tuple[str, int] | None:
    """(state, pages failed for good) once the job has ended (done, cancelled, budget); else None."""
    pipe = server.pipeline()
    pipe.hget(keys.job(job_id), "state")
    pipe.hget(keys.job_progress(job_id), "failed")
    state, failed = pipe.execute()
    state = _s(state) if state is not None else GONE
    if state in ENDED or state == GONE:
        return state, int(failed or 0)
    return None


def job_keys(server: Any, job_id: str) -> list[str]:
    """Every key that holds one job's state (its queued requests excepted: they are dropped when met)."""
    found = [keys.job(job_id), *(_s(k) for k in server.scan_iter(match=keys.job(job_id) + ":*", count=500))]
    return found + _filter_keys(server, job_id)


def _filter_keys(server: Any, job_id: str) -> list[str]:
    """A job's dupe filter: its layout, its buckets (compact.py), the SET of an older tweetform."""
    spider = _spider_of(server, job_id)
    layout = keys.dupefilter(spider, job_id)
    return [layout, *compact.bucket_keys(server, layout), keys.dupefilter_before(spider, job_id)]


def _spider_of(server: Any, job_id: str) -> str:
    """The spider that runs a job (its saved arguments name it): its dupe filter is that spider's."""
    return str(json.loads(server.hget(keys.job(job_id), "args") or "{}").get("spider") or "")


def expire_ended(server: Any, ttl: float, recent: int = 100) -> list[str]:
    """Done and cancelled jobs (of the most recent ``recent``): their dupe filter, written set,
    claims and levels expire after ``ttl`` seconds. Paused and budget-stopped jobs keep everything."""
    expired = []
    for job_id in (_s(j) for j in server.zrevrange(keys.jobs(), 0, recent - 1)):
        state, marked, args = server.hmget(keys.job(job_id), "state", "expiring", "args")
        if marked or _s(state or "") not in ("done", "cancelled"):
            continue
        pipe = server.pipeline(transaction=False)
        written = keys.written(job_id)
        for key in [*_filter_keys(server, job_id), written, *compact.bucket_keys(server, written), keys.written_before(job_id),
                    keys.expanded(job_id), keys.parked(job_id),
                    keys.job_starting(job_id), keys.page_stream(job_id), keys.pages_waiting(job_id)]:
            pipe.expire(key, int(ttl))
        for key in keys.level_keys(job_id, _depth(args)):  # named, not found by a keyspace SCAN
            pipe.expire(key, int(ttl))
        conversations = f"{job_id}:conversations"  # a cascade's claimed conversations (JobArgs.conversations_job)
        for key in [*seen.bucket_keys(server, job_id), keys.expanded(conversations), *seen.bucket_keys(server, conversations)]:
            pipe.expire(key, int(ttl))  # the claims' buckets
        pipe.hset(keys.job(job_id), "expiring", int(ttl))
        pipe.execute()
        expired.append(job_id)
    return expired


def _depth(args: Any) -> int:
    """A job's depth from its stored arguments (0 when unknown)."""
    try:
        return int(json.loads(args or "{}").get("depth") or 0)
    except (ValueError, TypeError, AttributeError):
        return 0


def purge_job(server: Any, job_id: str) -> int:
    """``scrapy admin purge JOB``: every key of the job goes now; its queued requests are dropped when met."""
    found = job_keys(server, job_id)
    removed = int(server.delete(*found)) if found else 0
    server.zrem(keys.jobs(), job_id)
    return removed


CLEAR_STEP = 500  # queue members dropped per script call (a short step: other clients wait while it runs)


def clear_queue(server: Any, spider: str) -> int:
    """``scrapy admin clear-queue``: drop a spider's queued requests (``lua/queue_clear.lua``); each counts as a
    page of its job failed for good, so the job ends instead of waiting for them. How many requests were dropped."""
    script, templates, removed = scripts.load(server, "queue_clear"), keys.job_templates(), 0
    for key in queue_keys(server, spider):
        left = 1
        while left:
            dropped, left = script(keys=[key, keys.deliveries(spider)], args=[templates, CLEAR_STEP])
            removed += int(dropped)
    return removed


def stop_node(server: Any, worker: str) -> list[str]:
    targets = [n["worker"] for n in nodes(server) if worker in ("all", n["worker"]) or worker == n.get("host")]
    for target in targets:
        server.set(keys.control(target), "stop", ex=300)
    return targets
