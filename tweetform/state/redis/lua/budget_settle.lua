-- include: job_common
-- A page's answer: its reservation becomes what it actually cost (tweetform.cost.redis_budget).
-- KEYS: budget hash, open reservations ZSET ; ARGV: member ("" when none), actual, then (app, amount) pairs
-- returns {budget, spent, reserved}; reservations count until their expiry on Redis's clock (redis_now)
if ARGV[1] ~= '' then redis.call('ZREM', KEYS[2], ARGV[1]) end
local spent = redis.call('HINCRBY', KEYS[1], 'spent', tonumber(ARGV[2]))
for i = 3, #ARGV - 1, 2 do
  redis.call('HINCRBY', KEYS[1], 'app:' .. ARGV[i], tonumber(ARGV[i + 1]))
end
local reserved = 0
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. redis_now(), '+inf')) do
  reserved = reserved + tonumber(string.match(member, '|(%d+)$'))
end
return {tonumber(redis.call('HGET', KEYS[1], 'budget') or '0'), spent, reserved}
