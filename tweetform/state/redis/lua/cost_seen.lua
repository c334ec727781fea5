-- include: lhash
-- The cost accounting's UTC-day dedupe, shared by every worker (tweetform.cost.ledger.SharedCostLedger).
-- KEYS: the layout of the ids billed to one app for one kind on one UTC day (compact SET buckets, lhash.lua)
-- ARGV: its bucket prefix, bucket load, TTL (s: given to the layout and to each bucket when it is made),
--       then the ids (decimal)
-- Returns how many of the ids were not billed yet (and are now).
local t = lh_open(KEYS[1], ARGV[1], ARGV[2], lh_hash_decimal, 'set', tonumber(ARGV[3]))
local new = lh_add_many(t, ARGV, 4)
lh_save(t)
return new
