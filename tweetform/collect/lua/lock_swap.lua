-- The collector lock, compare-and-set: only the holder (its exact value) refreshes it
-- (same value, new TTL) or hands it over (a dead holder's lock taken by a new collector).
-- KEYS[1] lock; ARGV[1] value expected, ARGV[2] new value, ARGV[3] TTL in ms. Returns 1 or 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
