-- KEYS: hash, inflight ; ARGV: rid, counted (1: assume the API counted it)
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[2] == '1' and redis.call('HGET', KEYS[1], 'limit') then redis.call('HINCRBY', KEYS[1], 'srem', -1) end
return 1
