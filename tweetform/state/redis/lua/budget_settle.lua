-- A page's answer: its reservation becomes what it actually cost (tweetform.cost.redis_budget).
-- KEYS: budget hash ; ARGV: reserved, actual ; returns {budget, spent, reserved}
local release = -tonumber(ARGV[1])
if release == 0 then release = 0 end  -- not -0: Redis reads "-0" as no integer
local reserved = redis.call('HINCRBY', KEYS[1], 'reserved', release)
if reserved < 0 then  -- never below zero (a reservation released twice after Redis came back)
  redis.call('HSET', KEYS[1], 'reserved', 0)
  reserved = 0
end
local spent = redis.call('HINCRBY', KEYS[1], 'spent', tonumber(ARGV[2]))
return {tonumber(redis.call('HGET', KEYS[1], 'budget') or '0'), spent, reserved}
