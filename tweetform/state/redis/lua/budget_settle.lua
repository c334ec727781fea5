-- A page's answer: its reservation becomes what it actually cost (tweetform.cost.redis_budget).
-- KEYS: budget hash ; ARGV: reserved, actual, then (app, amount) pairs ; returns {budget, spent, reserved}
local release = -tonumber(ARGV[1])
if release == 0 then release = 0 end  -- not -0: Redis reads "-0" as no integer (STATE-REDIS)
local reserved = redis.call('HINCRBY', KEYS[1], 'reserved', release)
if reserved < 0 then  -- never below zero (a reservation released twice after Redis came back)
  redis.call('HSET', KEYS[1], 'reserved', 0)
  reserved = 0
end
local spent = redis.call('HINCRBY', KEYS[1], 'spent', tonumber(ARGV[2]))
for i = 3, #ARGV - 1, 2 do
  redis.call('HINCRBY', KEYS[1], 'app:' .. ARGV[i], tonumber(ARGV[i + 1]))
end
return {tonumber(redis.call('HGET', KEYS[1], 'budget') or '0'), spent, reserved}
