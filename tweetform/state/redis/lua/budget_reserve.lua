-- include: job_common
-- A job's budget, shared by every worker (tweetform.cost.redis_budget): reserve a page's maximum cost.
-- KEYS: budget hash (budget, spent; integer micro-dollars), open reservations (ZSET "<token>|<amount>" by expiry)
-- ARGV: default budget, amount, member, ttl ; returns {reserved 1|0, budget, spent, reserved}
-- Expiry is on Redis's clock (redis_now): a host whose own clock is fast must not drop others' live reservations.
redis.call('HSETNX', KEYS[1], 'budget', ARGV[1])
local now = redis_now()
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)  -- a killed worker's reservations lapse
local reserved = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  reserved = reserved + tonumber(string.match(member, '|(%d+)$'))
end
local budget = tonumber(redis.call('HGET', KEYS[1], 'budget'))
local spent = tonumber(redis.call('HGET', KEYS[1], 'spent') or '0')
local amount = tonumber(ARGV[2])
if spent + reserved + amount > budget then
  return {0, budget, spent, reserved}
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[3])
return {1, budget, spent, reserved + amount}
