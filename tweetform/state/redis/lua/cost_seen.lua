-- The cost accounting's UTC-day dedupe, shared by every worker (tweetform.cost.ledger.SharedCostLedger).
-- KEYS: none (bucket keys are ARGV[1] .. bucket, all of one app, kind and day)
-- ARGV: key prefix, ttl, then groups of (bucket, count, ids...) ; returns how many ids were new
-- Ids are integers spread over small SETs, which Redis keeps as intsets (8 bytes an id).
local prefix, ttl = ARGV[1], tonumber(ARGV[2])
local new, i = 0, 3
while i <= #ARGV do
  local key, n = prefix .. ARGV[i], tonumber(ARGV[i + 1])
  new = new + redis.call('SADD', key, unpack(ARGV, i + 2, i + 1 + n))
  redis.call('EXPIRE', key, ttl)
  i = i + 2 + n
end
return new
