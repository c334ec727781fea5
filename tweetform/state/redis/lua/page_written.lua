-- include: lhash
-- A page is in its bucket file: record it as written for every worker (exactly-once output) and count it.
-- KEYS: the job's written-pages layout, the pages-per-bucket hash, the job's progress hash, the job's hash
--       (optional: a job that ended, marked "expiring" with the TTL by control.expire_ended, gets a written set
--       made now that expires with it; one made before has the TTL already, which its new buckets inherit)
-- ARGV: bucket prefix of the written pages, their bucket load, page id (10 bytes), output bucket,
--       progress counter (pages|errors), 1 when the page failed for good (counted as failed too), and then
--       its level's failed counter ("failed/<depth>", "" for none: last_complete_level reads it)
-- Returns 1 when the page was recorded now, 0 when it was already (counted once).
local t = lh_open(KEYS[1], ARGV[1], ARGV[2], lh_hash_digest)
if t.fresh and KEYS[4] then
  local ttl = redis.call('HGET', KEYS[4], 'expiring')
  if ttl then t.pttl = tonumber(ttl) * 1000 end
end
if not lh_add(t, ARGV[3]) then return 0 end
lh_save(t)
if t.fresh and t.pttl then redis.call('PEXPIRE', KEYS[1], t.pttl) end
redis.call('HINCRBY', KEYS[2], ARGV[4], 1)
redis.call('HINCRBY', KEYS[3], ARGV[5], 1)
if ARGV[6] == '1' then
  redis.call('HINCRBY', KEYS[3], 'failed', 1)
  if ARGV[7] and ARGV[7] ~= '' then redis.call('HINCRBY', KEYS[3], ARGV[7], 1) end
end
return 1
