-- include: quota_common
-- KEYS: (hash, inflight) per lane ; ARGV: margin, interval, hold (s), rid ; returns the chosen lane (1-based) or 0
local now, margin = redis_now(), tonumber(ARGV[1])
local lanes = {}
for i = 1, #KEYS / 2 do lanes[i] = {KEYS[2*i-1], KEYS[2*i]} end
local best, limit, reset = best_lane(lanes, now, margin)
if best == 0 then return 0 end
take_quota(lanes[best], limit, reset, now, margin, tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4])
return best
