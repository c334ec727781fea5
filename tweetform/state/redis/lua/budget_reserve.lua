-- A job's budget, shared by every worker (tweetform.cost.redis_budget): reserve a page's maximum cost.
-- KEYS: budget hash (budget, spent, reserved; integer micro-dollars) ; ARGV: default budget, amount
-- returns {reserved 1|0, budget, spent, reserved}
redis.call('HSETNX', KEYS[1], 'budget', ARGV[1])
local budget = tonumber(redis.call('HGET', KEYS[1], 'budget'))
local spent = tonumber(redis.call('HGET', KEYS[1], 'spent') or '0')
local reserved = tonumber(redis.call('HGET', KEYS[1], 'reserved') or '0')
local amount = tonumber(ARGV[2])
if spent + reserved + amount > budget then
  return {0, budget, spent, reserved}
end
redis.call('HINCRBY', KEYS[1], 'reserved', amount)
return {1, budget, spent, reserved + amount}
