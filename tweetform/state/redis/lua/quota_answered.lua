-- include: quota_common
-- KEYS: hash, inflight[, paced] ; ARGV: rid, status, limit, remaining, reset  ("" when a header is missing)
--   [, rate, window]: with the paced HASH (window, served), an answer without headers counts in the
--   fixed window of Redis's clock and stands for the headers rate requests per window would give
--   (TWEETFORM_BLUESKY_RATE, as quota/book.py pace_slices cuts it: requests per slice, slice seconds):
--   every worker counts in the same window, whatever its own clock says.
redis.call('ZREM', KEYS[2], ARGV[1])
local status = tonumber(ARGV[2])
if KEYS[3] then
  local rate, span = tonumber(ARGV[6]), tonumber(ARGV[7])
  local window = math.floor(redis_now() / span)
  if tonumber(redis.call('HGET', KEYS[3], 'window')) ~= window then
    redis.call('HSET', KEYS[3], 'window', window, 'served', 0)
  end
  local served = redis.call('HINCRBY', KEYS[3], 'served', 1)
  redis.call('EXPIRE', KEYS[3], 2 * span)
  ARGV[3], ARGV[4], ARGV[5] = rate, math.max(0, rate - served), (window + 1) * span
end
if ARGV[3] == '' or ARGV[4] == '' or ARGV[5] == '' then
  if status == 429 then redis.call('HSET', KEYS[1], 'blocked', redis_now() + 60) end
  return 0
end
-- the lane's window as known (one HMGET), then what the answer changes in one HSET (none: no write)
local limit, remaining, reset = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local f = redis.call('HMGET', KEYS[1], 'limit', 'reset', 'srem')
local changes = {}
if reset > (tonumber(f[2]) or 0) or not f[1] then
  changes = {'limit', limit, 'reset', reset, 'srem', remaining}
else
  local srem = tonumber(f[3])
  if not srem or remaining < srem then changes = {'srem', remaining} end  -- the lowest count stands
end
if status == 429 then
  if remaining > 0 then
    changes[#changes + 1], changes[#changes + 2] = 'blocked', redis_now() + 1
  else
    changes[#changes + 1], changes[#changes + 2] = 'srem', 0  -- (a later pair of a field wins in one HSET)
  end
end
if #changes > 0 then redis.call('HSET', KEYS[1], unpack(changes)) end
return 1
