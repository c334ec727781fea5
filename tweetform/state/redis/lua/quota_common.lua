-- helpers shared by the quota scripts: state of one lane (hash KEYS[2i-1], inflight KEYS[2i]).
-- The time is Redis's (TIME): every host decides on the same clock, whatever its own says.
-- A lane's reservations in flight are the members of its inflight ZSET whose hold has not expired
-- (score > now): counted with ZCOUNT; the expired ones (a killed worker's) are deleted when the lane
-- is next used (take_quota), not on every look (a pop looks at every lane of its endpoint).
local function redis_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1e6
end
local function flying_in(z, now)
  return redis.call('ZCOUNT', z, string.format('(%.17g', now), '+inf')
end
-- limit (nil until known), reset, srem, blocked, next of a lane's hash, and its reservations in flight
local function state(h, z, now)
  local f = redis.call('HMGET', h, 'limit', 'reset', 'srem', 'blocked', 'next')
  return tonumber(f[1]), tonumber(f[2]) or 0, tonumber(f[3]) or 0, tonumber(f[4]) or 0, tonumber(f[5]) or 0, flying_in(z, now)
end
local function available(limit, reset, srem, blocked, nxt, flying, now, margin)
  if now < blocked or now < nxt then return 0 end
  if not limit then return 1 - flying end
  if reset > 0 and now >= reset + margin then return limit - flying end
  if reset == 0 and srem - flying <= 0 then return 1 - flying end
  return srem - flying
end
-- the lane to use among n lanes whose (hash, inflight) keys follow KEYS[at] (lane i's: KEYS[at + 2i - 1], KEYS[at + 2i]):
-- the one with quota whose window ends first (the first in order among equals); 0 when none has quota now. Also its
-- limit and reset (for take_quota). Every lane's reset is read (one HGET each; a lone lane's is not: it is first
-- whatever its window), then lanes are looked at in that order, best first, until one has quota: the rest of a lane's
-- state is read only when it could be the one (usually the first looked at).
local function best_lane(at, n, now, margin)
  local ranks = {1e18}
  if n > 1 then
    for i = 1, n do
      local reset = tonumber(redis.call('HGET', KEYS[at + 2*i - 1], 'reset')) or 0
      ranks[i] = (reset > 0 and now < reset + margin) and reset or 1e18
    end
  end
  local checked = {}
  for _ = 1, n do
    local i, rank = 0, nil
    for j = 1, n do
      if not checked[j] and (not rank or ranks[j] < rank) then i, rank = j, ranks[j] end
    end
    checked[i] = true
    local h, z = KEYS[at + 2*i - 1], KEYS[at + 2*i]
    local f = redis.call('HMGET', h, 'limit', 'reset', 'srem', 'blocked', 'next')
    local limit, reset, srem, blocked, nxt = tonumber(f[1]), tonumber(f[2]) or 0, tonumber(f[3]) or 0, tonumber(f[4]) or 0, tonumber(f[5]) or 0
    -- a window's spent quota (srem <= 0 while the window lasts) is none whatever flies: no count needed
    if now >= blocked and now >= nxt and not (limit and reset > 0 and now < reset + margin and srem <= 0) then
      -- available() is bound minus the reservations in flight, which are at most the ZSET's members: fewer members
      -- than bound is quota for sure, without counting the unexpired ones (ZCOUNT); a probe (bound 1) just counts
      local bound = 1
      if limit then
        if reset > 0 and now >= reset + margin then bound = limit
        elseif reset == 0 then bound = math.max(srem, 1)
        else bound = srem end
      end
      if (bound > 1 and redis.call('ZCARD', z) < bound) or available(limit, reset, srem, blocked, nxt, flying_in(z, now), now, margin) > 0 then
        return i, limit, reset
      end
    end
  end
  return 0, nil, 0
end
-- take one request of quota on a lane (hash h, inflight z) chosen by best_lane (its limit and reset as best_lane read
-- them): reservation rid held for hold seconds
local function take_quota(h, z, limit, reset, now, margin, interval, hold, rid)
  redis.call('ZREMRANGEBYSCORE', z, '-inf', string.format('%.17g', now))  -- expired reservations leave the lane it uses
  redis.call('ZADD', z, now + hold, rid)
  local rolled = limit and reset > 0 and now >= reset + margin
  if rolled and interval > 0 then redis.call('HSET', h, 'srem', limit, 'reset', 0, 'next', now + interval)
  elseif rolled then redis.call('HSET', h, 'srem', limit, 'reset', 0)
  elseif interval > 0 then redis.call('HSET', h, 'next', now + interval) end
end
