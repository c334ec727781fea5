"""The shared request queue: per-endpoint priority queues with in-flight tracking.

scrapy-redis deletes a request from Redis when a worker pops it, so a killed
worker loses it (and, its fingerprint being seen, it is never fetched again).
Here a pop *moves* the request into an in-flight hash, tagged with the worker,
in one Lua script; the entry is removed only when the request's callback output
has been consumed (:meth:`InFlightQueue.ack`). A worker whose heartbeat key
expired is dead: :meth:`InFlightQueue.reap` puts its in-flight requests back.
Pushing with the dupe-filter check is one script too, so a fingerprint is never
recorded for a request that did not reach the queue.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from scrapy import Request
from scrapy.utils.request import request_from_dict
from scrapy_redis.queue import Base

from tweetform.distributed import keys, serializer

META_QID = "tweetform_qid"
NO_ENDPOINT = "-"

# KEYS: queue, seq, inflight, dupefilter-or-"" ; ARGV: fingerprint-or-"", priority, data, old qid
PUSH = """
if KEYS[4] ~= '' and ARGV[1] ~= '' then
  if redis.call('SADD', KEYS[4], ARGV[1]) == 0 then return 0 end
end
local seq = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], -tonumber(ARGV[2]) * 1e12 + seq, ARGV[3])
if ARGV[4] ~= '' then redis.call('HDEL', KEYS[3], ARGV[4]) end
return 1
"""

# KEYS: inflight, queues... ; ARGV: worker, now, endpoints...
POP = """
for i = 2, #KEYS do
  local got = redis.call('ZPOPMIN', KEYS[i])
  if got[1] then
    local qid = string.match(got[1], '"tweetform_qid":"(%x+)"')
    local entry = cjson.encode({w = ARGV[1], t = tonumber(ARGV[2]), q = KEYS[i], s = got[2], d = got[1]})
    if qid then redis.call('HSET', KEYS[1], qid, entry) end
    return {ARGV[i + 1], got[1]}
  end
end
return false
"""

# KEYS: inflight ; ARGV: heartbeat key prefix, suffix, worker-to-release-or-""
REAP = """
local moved = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local e = cjson.decode(all[i + 1])
  if (ARGV[3] ~= '' and e.w == ARGV[3]) or redis.call('EXISTS', ARGV[1] .. e.w .. ARGV[2]) == 0 then
    redis.call('ZADD', e.q, e.s, e.d)
    redis.call('HDEL', KEYS[1], all[i])
    moved = moved + 1
  end
end
return moved
"""


# KEYS: inflight ; ARGV: worker, taken-before, held request ids...
RECLAIM = """
local held = {}
for i = 3, #ARGV do held[ARGV[i]] = true end
local moved = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local e = cjson.decode(all[i + 1])
  if e.w == ARGV[1] and not held[all[i]] and e.t < tonumber(ARGV[2]) then
    redis.call('ZADD', e.q, e.s, e.d)
    redis.call('HDEL', KEYS[1], all[i])
    moved = moved + 1
  end
end
return moved
"""


class InFlightQueue(Base):
    """scrapy-redis queue subclass: JSON, per endpoint, nothing lost when a worker dies."""

    def __init__(self, server: Any, spider: Any, key: str, serializer_module: Any = serializer, *, worker: str) -> None:
        super().__init__(server, spider, key, serializer_module)
        self.worker = worker
        self.name = spider.name
        self._push = server.register_script(PUSH)
        self._pop = server.register_script(POP)
        self._reap = server.register_script(REAP)
        self.endpoints: set[str] = set()
        self.held: set[str] = set()  # request ids this worker took and has not finished
        self.unacked: set[str] = set()  # finished while Redis was away: to remove when it is back
        self._reclaim = server.register_script(RECLAIM)

    def queue_key(self, endpoint: str) -> str:
        return keys.queue(self.name, endpoint)

    def push(self, request: Request, fingerprint: str = "", dupefilter_key: str = "") -> bool:  # type: ignore[override]
        old = request.meta.get(META_QID, "")
        self.held.discard(old)
        request.meta[META_QID] = uuid.uuid4().hex
        endpoint = request.meta.get("tweetform_endpoint") or NO_ENDPOINT
        data = self._encode_request(request)
        pushed = self._push(
            keys=[self.queue_key(endpoint), keys.queue_sequence(self.name), keys.in_flight(self.name), dupefilter_key],
            args=[fingerprint, request.priority, data, old],
        )
        self.endpoints.add(endpoint)
        return bool(pushed)

    def prepare(self, request: Request) -> tuple[str, str, str, int]:
        """A request as queued: (endpoint, request data, the id it replaces, priority); gets a new id."""
        old = request.meta.get(META_QID, "")
        self.held.discard(old)
        request.meta[META_QID] = uuid.uuid4().hex
        endpoint = request.meta.get("tweetform_endpoint") or NO_ENDPOINT
        return endpoint, self._encode_request(request), old, request.priority

    def push_many(self, items: list[tuple[tuple[str, str, str, int], str, str]]) -> list[bool]:
        """Push prepared requests (with their fingerprint and dupe-filter key) in one round trip."""
        pipe = self.server.pipeline(transaction=False)
        for (endpoint, data, old, priority), fingerprint, dupefilter_key in items:
            self._push(
                keys=[self.queue_key(endpoint), keys.queue_sequence(self.name), keys.in_flight(self.name), dupefilter_key],
                args=[fingerprint, priority, data, old], client=pipe,
            )
            self.endpoints.add(endpoint)
        return [bool(r) for r in pipe.execute()]

    def pop_from(self, endpoints: list[str]) -> tuple[str, Request] | None:  # type: ignore[override]
        """Take the first request of the first non-empty endpoint queue, into in-flight."""
        if not endpoints:
            return None
        got = self._pop(
            keys=[keys.in_flight(self.name), *(self.queue_key(e) for e in endpoints)],
            args=[self.worker, time.time(), *endpoints],
        )
        if not got:
            return None
        endpoint, data = (g.decode() if isinstance(g, bytes) else g for g in got)
        request = self._decode_request(data)
        self.held.add(request.meta.get(META_QID, ""))
        return endpoint, request

    def _decode_request(self, encoded_request: Any) -> Request:
        return request_from_dict(self.serializer.loads(encoded_request), spider=self.spider)

    def _encode_request(self, request: Request) -> str:
        return self.serializer.dumps(request.to_dict(spider=self.spider))

    def mark_done(self, request: Request) -> None:
        """Finished: removed from in-flight by the next :meth:`flush_acks`."""
        qid = request.meta.get(META_QID)
        if qid:
            self.held.discard(qid)
            self.unacked.add(qid)

    def ack(self, request: Request) -> None:
        self.mark_done(request)
        self.flush_acks()

    def flush_acks(self) -> None:
        """Remove finished requests from in-flight (retried after Redis was away)."""
        if self.unacked:
            self.server.hdel(keys.in_flight(self.name), *self.unacked)
            self.unacked.clear()

    def reclaim_lost(self, min_age: float = 5.0) -> int:
        """Put back in-flight entries of this worker that it does not hold: a pop whose
        reply was lost when Redis went away leaves one behind."""
        return int(self._reclaim(keys=[keys.in_flight(self.name)],
                                 args=[self.worker, time.time() - min_age, *sorted(self.held | self.unacked)]))

    def reap(self, release_own: bool = False) -> int:
        """Put back in-flight requests of dead workers (and this one's when it stops)."""
        prefix, suffix = keys.HEARTBEAT_PARTS
        return int(self._reap(keys=[keys.in_flight(self.name)], args=[prefix, suffix, self.worker if release_own else ""]))

    def all_endpoints(self) -> list[str]:
        found = []
        for key in self.server.scan_iter(match=keys.queue(self.name, "*"), count=500):
            k = key.decode() if isinstance(key, bytes) else key
            found.append(k[len(keys.queue(self.name, "")):])
        return [e for e in found if e != "seq"]

    def __len__(self) -> int:
        pipe = self.server.pipeline()
        for endpoint in self.all_endpoints():
            pipe.zcard(self.queue_key(endpoint))
        return sum(pipe.execute())

    def in_flight_count(self) -> int:
        return int(self.server.hlen(keys.in_flight(self.name)))

    def clear(self) -> None:
        for endpoint in self.all_endpoints():
            self.server.delete(self.queue_key(endpoint))
