-- include: lhash
-- Claim users for expansion, each once per job, in small hashes Redis keeps as listpacks
-- (tweetform/state/redis/seen.py says why and how big): a job with max_users, a cascade, the seeds of any
-- job (a job without max_users claims the users its pages find in queue_push.lua, "k").
-- KEYS: the job's layout hash (fields n, lvl, split, load, marks), level users, level sequence
-- ARGV: claimer tag (decimal), max_users-or-"", bucket load (used by the job's first claim),
--       the uids in decimal, comma-separated (one argument: cheap to send and parse), the buckets' key prefix
-- Returns one flag per uid, in order: "1" claimed now, "0" not.
-- The buckets are lhash.lua's (grown by linear hashing), hash kind, under lh_hash_decimal (seen.py's bucket_index);
-- the field is the id itself, so a lookup is exact (no false positive), the value the claimer's tag.
local t = lh_open(KEYS[1], ARGV[5], ARGV[3], lh_hash_decimal)
local cap = tonumber(ARGV[2])  -- nil: no max_users
local tag = ARGV[1]

local flags = {}
local added = 0
for uid in string.gmatch(ARGV[4], '[^,]+') do
  local h = lh_hash_decimal(uid)  -- once: the bucket again from it if the layout grows before the claim
  local key = lh_key(t, h)
  local owner = redis.call('HGET', key, uid)
  local flag = '0'
  if owner then
    if owner == tag then flag = '1' end  -- its page fetched again
  elseif not cap or t.n < cap then
    if t.n + 1 > t.room then
      lh_reserve(t, 1)
      key = lh_key(t, h)
    end
    redis.call('HSET', key, uid, tag)
    if cap then redis.call('ZADD', KEYS[2], 'NX', redis.call('INCR', KEYS[3]), uid) end
    lh_inherit_ttl(t, key)  -- the job ended (control.expire_ended gave its keys a TTL): a late claim expires with them
    flag = '1'
    t.n, t.changed, added = t.n + 1, true, added + 1
  end
  flags[#flags + 1] = flag
end
if added > 0 then
  lh_save(t)
  -- a job's claims made by this code: a queued first page negates its user's tag (queue_push.lua); an older
  -- tweetform's job kept fingerprints instead, and its pushes go on using them. The value is the layout's
  -- birth (Redis TIME, µs): a job purged and pushed again under its id gets another (workers' caches: seen.py)
  if t.fresh then
    local now = redis.call('TIME')
    redis.call('HSET', KEYS[1], 'marks', now[1] .. string.format('%06d', tonumber(now[2])))
  end
  if cap then lh_inherit_ttl(t, KEYS[2]); lh_inherit_ttl(t, KEYS[3]) end
end
return table.concat(flags)
