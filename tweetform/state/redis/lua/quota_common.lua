-- helpers shared by the quota scripts: state of one lane (hash KEYS[2i-1], inflight KEYS[2i])
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
