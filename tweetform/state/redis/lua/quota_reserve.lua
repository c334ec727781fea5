-- include: quota_common
-- KEYS: (hash, inflight) per lane ; ARGV: now, margin, interval, expiry, rid ; returns the chosen lane (1-based) or 0
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
