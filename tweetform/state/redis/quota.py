"""Quota shared by every process through Redis: the same rules as
:class:`tweetform.quota.book.QuotaBook`, each step one Lua script, so several
processes on several hosts using the same credentials together never exceed any
credential's limit.

Per lane × endpoint, a HASH (``keys.quota``) holds ``limit``, ``reset``,
``srem`` (the lowest remaining the API reported this window), ``blocked`` (a
per-second 429) and ``next`` (per-second pacing); a ZSET beside it holds the
reservations in flight, each expiring after ``DOWNLOAD_TIMEOUT`` plus a margin so
a killed worker's reservations do not hold quota forever. Only credential
aliases appear in the keys.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Mapping

from tweetform.api.endpoints import Endpoint
from tweetform.distributed import keys
from tweetform.quota.book import PER_SECOND_INTERVAL, Reservation, _int
from tweetform.quota.pool import CredentialPool, Lane

# helpers shared by the scripts: state of one lane (hash KEYS[2i-1], inflight KEYS[2i])
COMMON = """
local function state(h, z, now)
  redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
  local f = redis.call('HMGET', h, 'limit', 'reset', 'srem', 'blocked', 'next')
  return tonumber(f[1]), tonumber(f[2]) or 0, tonumber(f[3]) or 0, tonumber(f[4]) or 0, tonumber(f[5]) or 0,
         redis.call('ZCARD', z)
end
local function available(limit, reset, srem, blocked, nxt, flying, now, margin)
  if now < blocked or now < nxt then return 0 end
  if not limit then return 1 - flying end
  if reset > 0 and now >= reset + margin then return limit - flying end
  if reset == 0 and srem - flying <= 0 then return 1 - flying end
  return srem - flying
end
"""

# ARGV: now, margin, interval, expiry, rid
RESERVE = COMMON + """
local now, margin = tonumber(ARGV[1]), tonumber(ARGV[2])
local best, best_rank = 0, nil
for i = 1, #KEYS / 2 do
  local limit, reset, srem, blocked, nxt, flying = state(KEYS[2*i-1], KEYS[2*i], now)
  if available(limit, reset, srem, blocked, nxt, flying, now, margin) > 0 then
    local rank = (reset > 0 and now < reset + margin) and reset or 1e18
    if not best_rank or rank < best_rank then best, best_rank = i, rank end
  end
end
if best == 0 then return 0 end
local h, z = KEYS[2*best-1], KEYS[2*best]
local limit, reset = tonumber(redis.call('HGET', h, 'limit')), tonumber(redis.call('HGET', h, 'reset')) or 0
if limit and reset > 0 and now >= reset + margin then redis.call('HSET', h, 'srem', limit, 'reset', 0) end
redis.call('ZADD', z, tonumber(ARGV[4]), ARGV[5])
if tonumber(ARGV[3]) > 0 then redis.call('HSET', h, 'next', now + tonumber(ARGV[3])) end
return best
"""

# ARGV: now, margin ; returns 1 if a lane could send now
AVAILABLE = COMMON + """
local now, margin = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 1, #KEYS / 2 do
  local limit, reset, srem, blocked, nxt, flying = state(KEYS[2*i-1], KEYS[2*i], now)
  if available(limit, reset, srem, blocked, nxt, flying, now, margin) > 0 then return 1 end
end
return 0
"""

# ARGV: now, margin ; earliest time quota may be back, or -1 when an answer in flight decides
READY_AT = COMMON + """
local now, margin = tonumber(ARGV[1]), tonumber(ARGV[2])
local earliest = nil
for i = 1, #KEYS / 2 do
  local limit, reset, srem, blocked, nxt, flying = state(KEYS[2*i-1], KEYS[2*i], now)
  local t = nil
  if blocked > now then t = blocked end
  if nxt > now then t = math.max(t or 0, nxt) end
  if limit and reset > 0 and srem - flying <= 0 then t = math.max(t or 0, reset + margin) end
  if not t then return '-1' end
  if not earliest or t < earliest then earliest = t end
end
return tostring(earliest or -1)
"""

# KEYS: hash, inflight ; ARGV: rid, status, limit, remaining, reset, now  ("" when a header is missing)
ANSWERED = """
redis.call('ZREM', KEYS[2], ARGV[1])
local status, now = tonumber(ARGV[2]), tonumber(ARGV[6])
if ARGV[3] == '' or ARGV[4] == '' or ARGV[5] == '' then
  if status == 429 then redis.call('HSET', KEYS[1], 'blocked', now + 60) end
  return 0
end
local limit, remaining, reset = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local old_limit, old_reset = redis.call('HGET', KEYS[1], 'limit'), tonumber(redis.call('HGET', KEYS[1], 'reset')) or 0
if reset > old_reset or not old_limit then
  redis.call('HSET', KEYS[1], 'limit', limit, 'reset', reset, 'srem', remaining)
else
  local srem = tonumber(redis.call('HGET', KEYS[1], 'srem')) or remaining
  redis.call('HSET', KEYS[1], 'srem', math.min(srem, remaining))
end
if status == 429 then
  if remaining > 0 then redis.call('HSET', KEYS[1], 'blocked', now + 1) else redis.call('HSET', KEYS[1], 'srem', 0) end
end
return 1
"""

# KEYS: hash, inflight ; ARGV: rid, counted (1: assume the API counted it)
RELEASE = """
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[2] == '1' and redis.call('HGET', KEYS[1], 'limit') then redis.call('HINCRBY', KEYS[1], 'srem', -1) end
return 1
"""


class RedisQuotaBook:
    """The shared quota book (same interface as the in-process one)."""

    def __init__(self, pool: CredentialPool, server: Any, *, margin: float = 1.0, hold: float = 90.0) -> None:
        self.pool = pool
        self.server = server
        self.margin = margin
        self.hold = hold  # seconds a reservation counts as in flight at most
        self._reserve = server.register_script(RESERVE)
        self._available = server.register_script(AVAILABLE)
        self._ready_at = server.register_script(READY_AT)
        self._answered = server.register_script(ANSWERED)
        self._release = server.register_script(RELEASE)

    def _keys(self, lane: Lane, endpoint: str) -> list[str]:
        h = keys.quota(lane.name, endpoint)
        return [h, h + ":inflight"]

    def _all_keys(self, lanes: list[Lane], endpoint: str) -> list[str]:
        return [k for lane in lanes for k in self._keys(lane, endpoint)]

    def has_lanes(self, endpoint: Endpoint) -> bool:
        # held lanes count: their requests wait for them (or for others), they do not fail
        return bool(self.pool.lanes(endpoint, include_held=True))

    def reserve(self, endpoint: Endpoint) -> Reservation | None:
        lanes = self.pool.lanes(endpoint)
        if not lanes:
            return None
        now = time.time()
        rid = uuid.uuid4().hex
        interval = PER_SECOND_INTERVAL if endpoint.key == "/2/tweets/search/all" else 0
        chosen = int(self._reserve(keys=self._all_keys(lanes, endpoint.key), args=[now, self.margin, interval, now + self.hold, rid]))
        if not chosen:
            return None
        return Reservation(lanes[chosen - 1], endpoint.key, rid)

    def available_now(self, endpoint: Endpoint) -> bool:
        lanes = self.pool.lanes(endpoint)
        return bool(lanes) and bool(int(self._available(keys=self._all_keys(lanes, endpoint.key), args=[time.time(), self.margin])))

    def ready_at(self, endpoint: Endpoint) -> float | None:
        lanes = self.pool.lanes(endpoint)
        if not lanes:
            return None
        value = float(self._ready_at(keys=self._all_keys(lanes, endpoint.key), args=[time.time(), self.margin]))
        return None if value < 0 else value

    def answered(self, reservation: Reservation, status: int, headers: Mapping[str, str]) -> None:
        values = [_int(headers.get(h)) for h in ("x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset")]
        self._answered(keys=self._keys(reservation.lane, reservation.endpoint),
                       args=[reservation.rid, status, *("" if v is None else v for v in values), time.time()])

    def cancel(self, reservation: Reservation) -> None:
        self._release(keys=self._keys(reservation.lane, reservation.endpoint), args=[reservation.rid, "0"])

    def failed(self, reservation: Reservation) -> None:
        self._release(keys=self._keys(reservation.lane, reservation.endpoint), args=[reservation.rid, "1"])
