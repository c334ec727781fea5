-- include: quota_common
-- KEYS: hash, inflight[, paced] ; ARGV: rid, status, limit, remaining, reset  ("" when a header is missing)
--   [, rate, window]: with the paced HASH (window, served), an answer without headers counts in the
--   fixed window of Redis's clock and stands for the headers rate requests per window would give
--   (TWEETFORM_BLUESKY_RATE, as quota/book.py pace_slices cuts it: requests per slice, slice seconds):
--   every worker counts in the same window, whatever its own clock says.
redis.call('ZREM', KEYS[2], ARGV[1])
local status, now = tonumber(ARGV[2]), redis_now()
if KEYS[3] then
  local rate, span = tonumber(ARGV[6]), tonumber(ARGV[7])
  local window = math.floor(now / span)
  if tonumber(redis.call('HGET', KEYS[3], 'window')) ~= window then
    redis.call('HSET', KEYS[3], 'window', window, 'served', 0)
  end
  local served = redis.call('HINCRBY', KEYS[3], 'served', 1)
  redis.call('EXPIRE', KEYS[3], 2 * span)
  ARGV[3], ARGV[4], ARGV[5] = rate, math.max(0, rate - served), (window + 1) * span
end
if ARGV[3] == '' or ARGV[4] == '' or ARGV[5] == '' then
  if status == 429 then redis.call('HSET', KEYS[1], 'blocked', now + 60) end
  return 0
end
local limit, remaining, reset = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local old_limit, old_reset = redis.call('HGET', KEYS[1], 'limit'), tonumber(redis.call('HGET', KEYS[1], 'reset')) or 0
if reset > old_reset or not old_limit then
  redis.call('HSET', KEYS[1], 'limit', limit, 'reset', reset, 'srem', remaining)
else
  local srem = tonumber(redis.call('HGET', KEYS[1], 'srem')) or remaining
  redis.call('HSET', KEYS[1], 'srem', math.min(srem, remaining))
end
if status == 429 then
  if remaining > 0 then redis.call('HSET', KEYS[1], 'blocked', now + 1) else redis.call('HSET', KEYS[1], 'srem', 0) end
end
return 1
