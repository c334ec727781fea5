-- include: lhash
-- Was a page written by any worker? (page_written.lua recorded it)
-- KEYS: the job's written-pages layout ; ARGV: their bucket prefix, page id (10 bytes)
-- Returns 1 or 0.
local t = lh_open(KEYS[1], ARGV[1], 1, lh_hash_digest)
if t.fresh then return 0 end
return lh_has(t, ARGV[2]) and 1 or 0
