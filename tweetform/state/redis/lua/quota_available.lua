-- include: quota_common
-- KEYS: (hash, inflight) per lane ; ARGV: margin ; returns 1 if a lane could send now
local now, margin = redis_now(), tonumber(ARGV[1])
for i = 1, #KEYS / 2 do
  local limit, reset, srem, blocked, nxt, flying = state(KEYS[2*i-1], KEYS[2*i], now)
  if available(limit, reset, srem, blocked, nxt, flying, now, margin) > 0 then return 1 end
end
return 0
