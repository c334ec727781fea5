-- The collector lock expired (Redis away longer than its TTL): take it again, only if no other
-- collector took it since — the fencing counter still holds this collector's token.
-- KEYS[1] lock, KEYS[2] fencing counter; ARGV[1] this collector's lock value, ARGV[2] TTL in ms,
-- ARGV[3] its fencing token. Returns 1 or 0.
if tonumber(redis.call('GET', KEYS[2]) or '0') ~= tonumber(ARGV[3]) then return 0 end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
