-- include: lhash
-- Claim users for expansion, each once per job, in small hashes Redis keeps as listpacks
-- (tweetform/state/redis/seen.py says why and how big).
-- KEYS: the job's layout hash (fields n, lvl, split, load), level users, level sequence
-- ARGV: claimer tag (decimal), max_users-or-"", bucket load (used by the job's first claim),
--       the uids in decimal, comma-separated (one argument: cheap to send and parse), the buckets' key prefix
-- Returns one flag per uid, in order: "1" claimed now, "0" not.
-- Buckets are "<ARGV[5]><i>" (keys.py's name), grown by linear hashing: a user's bucket is h mod 2^lvl, or
-- h mod 2^(lvl+1) for buckets already split this round (below `split`); h is the id mod 2^31-1,
-- scrambled (ids are up to 64 bits, past Lua's 53-bit numbers: read in 7-digit parts).
-- The field is the id itself, so a lookup is exact (no false positive).
local meta = KEYS[1]
local m = redis.call('HMGET', meta, 'n', 'lvl', 'split', 'load')
local n = tonumber(m[1]) or 0
local lvl = tonumber(m[2]) or 0
local split = tonumber(m[3]) or 0
local load = tonumber(m[4]) or tonumber(ARGV[3])
local cap = tonumber(ARGV[2])  -- nil: no max_users
local tag = ARGV[1]
-- the job ended (control.expire_ended gave its keys a TTL): what a late claim creates expires with them
local left = m[2] and redis.call('PTTL', meta) or -1
local function inherit_ttl(key)
  if left > 0 and redis.call('PTTL', key) == -1 then redis.call('PEXPIRE', key, left) end
end

-- a user's hash: lhash.lua's lh_hash_decimal (the compact sets' hash of a decimal id, the same as seen.py's)
local hash = lh_hash_decimal

local size = 2 ^ lvl  -- buckets at the start of this round
local function bucket_of(h)
  local b = h % size
  if b < split then b = h % (size * 2) end
  return ARGV[5] .. string.format('%d', b)  -- an integer: %d, not Lua's %.14g of a double (slower)
end

-- one more bucket: the entries of bucket `split` whose next bit is set move to split + 2^lvl
local function grow()
  local from = ARGV[5] .. split
  local to = ARGV[5] .. (split + size)
  local entries = redis.call('HGETALL', from)
  local moved, gone = {}, {}
  for i = 1, #entries, 2 do
    if hash(entries[i]) % (size * 2) ~= split then
      moved[#moved + 1] = entries[i]
      moved[#moved + 1] = entries[i + 1]
      gone[#gone + 1] = entries[i]
    end
  end
  if #gone > 0 then
    redis.call('HSET', to, unpack(moved))
    redis.call('HDEL', from, unpack(gone))
    inherit_ttl(to)
  end
  split = split + 1
  if split == size then
    lvl, split, size = lvl + 1, 0, size * 2
  end
end

local flags = {}
local added = 0
for uid in string.gmatch(ARGV[4], '[^,]+') do
  local key = bucket_of(hash(uid))
  local owner = redis.call('HGET', key, uid)
  local flag = '0'
  if owner then
    if owner == tag then flag = '1' end  -- its page fetched again
  elseif not cap or n < cap then
    redis.call('HSET', key, uid, tag)
    if cap then redis.call('ZADD', KEYS[2], 'NX', redis.call('INCR', KEYS[3]), uid) end
    inherit_ttl(key)
    flag = '1'
    n, added = n + 1, added + 1
    while n > load * (size + split) do grow() end
  end
  flags[#flags + 1] = flag
end
if added > 0 then
  redis.call('HSET', meta, 'n', n, 'lvl', lvl, 'split', split, 'load', load)
  -- a job's claims made by this code: a queued first page negates its user's tag (queue_push.lua); an
  -- older tweetform's job kept fingerprints instead, and its pushes go on using them
  if not m[2] then redis.call('HSET', meta, 'marks', 1) end
  if cap then inherit_ttl(KEYS[2]); inherit_ttl(KEYS[3]) end
end
return table.concat(flags)
