-- include: quota_common
-- KEYS: (hash, inflight) per lane ; ARGV: margin ; {earliest time quota may be back (Redis time) or -1 when an answer in flight decides, Redis's now}
local now, margin = redis_now(), tonumber(ARGV[1])
local earliest = nil
for i = 1, #KEYS / 2 do
  local limit, reset, srem, blocked, nxt, flying = state(KEYS[2*i-1], KEYS[2*i], now)
  local t = nil
  if blocked > now then t = blocked end
  if nxt > now then t = math.max(t or 0, nxt) end
  if limit and reset > 0 and srem - flying <= 0 then t = math.max(t or 0, reset + margin) end
  if not t then return {'-1', tostring(now)} end
  if not earliest or t < earliest then earliest = t end
end
return {tostring(earliest or -1), tostring(now)}
