-- include: lhash
-- Upgrade: fold one SET an older tweetform kept (before issue 15: the dupe filter's fingerprints, the
-- written page ids, a day's billed ids in one of 1,024 buckets) into its compact set (lhash.lua).
-- KEYS: the old SET, the compact set's layout
-- ARGV: the layout's bucket prefix, bucket load, kind ("digest": members in hex, kept as bytes;
--       "decimal": ids, kept in SET buckets), how many members to move, TTL (s) for a new set of the
--       "decimal" kind ("" for none)
-- A member leaves the old SET (SPOP) in the step that adds it to the compact set, so several
-- workers folding at once, or one dying half-way, lose and double nothing; Redis deletes the old
-- SET with its last member. A job's compact set made here keeps the old SET's remaining TTL.
-- Returns {members moved now, members the old SET still holds}.
local pttl = redis.call('PTTL', KEYS[1])
if pttl == -2 then return {0, 0} end
local moved = redis.call('SPOP', KEYS[1], tonumber(ARGV[4]))
if ARGV[3] == 'decimal' then
  local t = lh_open(KEYS[2], ARGV[1], ARGV[2], lh_hash_decimal, 'set', tonumber(ARGV[5]))
  local ids = {}
  for _, m in ipairs(moved) do
    if string.match(m, '^%d+$') then ids[#ids + 1] = m end
  end
  if #ids > 0 then lh_add_many(t, ids) end
  lh_save(t)
else
  local t = lh_open(KEYS[2], ARGV[1], ARGV[2], lh_hash_digest)
  if t.fresh and pttl > 0 then t.pttl = pttl end  -- an ended job's: its new buckets expire with the old SET
  for _, m in ipairs(moved) do
    if #m % 2 == 0 and string.match(m, '^%x+$') then  -- hex, as the older tweetform wrote it
      m = string.gsub(m, '%x%x', function(h) return string.char(tonumber(h, 16)) end)
    end
    lh_add(t, m)
  end
  lh_save(t)
  if t.pttl and redis.call('PTTL', KEYS[2]) == -1 then redis.call('PEXPIRE', KEYS[2], t.pttl) end
end
return {#moved, redis.call('SCARD', KEYS[1])}
