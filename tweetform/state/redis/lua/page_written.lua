-- include: lhash
-- A page is in its bucket file: record it as written for every worker (exactly-once output) and count it.
-- KEYS: the job's written-pages layout, the pages-per-bucket hash, the job's progress hash
-- ARGV: bucket prefix of the written pages, their bucket load, page id (10 bytes), output bucket,
--       progress counter (pages|errors), 1 when the page failed for good (counted as failed too), and then
--       its level's failed counter ("failed/<depth>", "" for none: last_complete_level reads it)
-- Returns 1 when the page was recorded now, 0 when it was already (counted once).
local t = lh_open(KEYS[1], ARGV[1], ARGV[2], lh_hash_digest)
if not lh_add(t, ARGV[3]) then return 0 end
lh_save(t)
redis.call('HINCRBY', KEYS[2], ARGV[4], 1)
redis.call('HINCRBY', KEYS[3], ARGV[5], 1)
if ARGV[6] == '1' then
  redis.call('HINCRBY', KEYS[3], 'failed', 1)
  if ARGV[7] and ARGV[7] ~= '' then redis.call('HINCRBY', KEYS[3], ARGV[7], 1) end
end
return 1
