-- helpers shared by the quota scripts: state of one lane (hash KEYS[2i-1], inflight KEYS[2i]).
-- The time is Redis's (TIME): every host decides on the same clock, whatever its own says.
local function redis_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1e6
end
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
-- the lane to use among lanes (a list of {hash, inflight}): the one with quota whose window
-- ends first; 0 when none has quota now
local function best_lane(lanes, now, margin)
  local best, best_rank = 0, nil
  for i, lane in ipairs(lanes) do
    local limit, reset, srem, blocked, nxt, flying = state(lane[1], lane[2], now)
    if available(limit, reset, srem, blocked, nxt, flying, now, margin) > 0 then
      local rank = (reset > 0 and now < reset + margin) and reset or 1e18
      if not best_rank or rank < best_rank then best, best_rank = i, rank end
    end
  end
  return best
end
-- take one request of quota on a lane chosen by best_lane: reservation rid held for hold seconds
local function take_quota(lane, now, margin, interval, hold, rid)
  local h, z = lane[1], lane[2]
  local limit, reset = tonumber(redis.call('HGET', h, 'limit')), tonumber(redis.call('HGET', h, 'reset')) or 0
  if limit and reset > 0 and now >= reset + margin then redis.call('HSET', h, 'srem', limit, 'reset', 0) end
  redis.call('ZADD', z, now + hold, rid)
  if interval > 0 then redis.call('HSET', h, 'next', now + interval) end
end
