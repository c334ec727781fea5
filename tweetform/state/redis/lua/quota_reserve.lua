-- include: quota_common
-- KEYS: (hash, inflight) per lane ; ARGV: margin, interval, hold (s), rid ; returns the chosen lane (1-based) or 0
local now, margin = redis_now(), tonumber(ARGV[1])
local best, limit, reset = best_lane(0, #KEYS / 2, now, margin)
if best == 0 then return 0 end
take_quota(KEYS[2*best - 1], KEYS[2*best], limit, reset, now, margin, tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4])
return best
