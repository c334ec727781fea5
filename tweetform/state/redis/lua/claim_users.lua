-- KEYS: expanded, level users, level sequence ; ARGV: claimer, max_users-or-"", uid...
local claimed = {}
for i = 3, #ARGV do
  local owner = redis.call('HGET', KEYS[1], ARGV[i])
  if owner then
    if owner == ARGV[1] then claimed[#claimed + 1] = ARGV[i] end
  elseif ARGV[2] == '' or redis.call('HLEN', KEYS[1]) < tonumber(ARGV[2]) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[1])
    if ARGV[2] ~= '' then redis.call('ZADD', KEYS[2], 'NX', redis.call('INCR', KEYS[3]), ARGV[i]) end
    claimed[#claimed + 1] = ARGV[i]
  end
end
return claimed
