-- A set spread over small buckets Redis keeps compact (tweetform/state/redis/compact.py says why
-- and how big): a layout HASH (n members, lvl, split, load) and buckets "<bucket prefix><i>",
-- grown by linear hashing. A member's bucket is h mod 2^lvl, or h mod 2^(lvl+1) for buckets
-- already split this round (below `split`); h is the member's hash (below). Buckets are HASHes
-- (member -> "", or a value: the claims of seen.py; listpacks) or, kind "set", SETs of integers
-- (intsets) holding a sentinel 0 from their creation, so a TTL given then covers them for good. A bucket created once the layout has a
-- TTL (the job ended: control.expire_ended, then a late page or push) gets the layout's remaining TTL.
local LH_P = 2147483647
local lh_tonumber, lh_sub, lh_format = tonumber, string.sub, string.format  -- upvalues: cheaper than globals per id
-- a decimal id: (id mod P) scrambled by a Lehmer step, exact in doubles (ids past 15 digits in two parts)
local function lh_hash_decimal(id)
  local x
  if #id <= 15 then
    x = lh_tonumber(id) % LH_P
  else
    x = (lh_tonumber(lh_sub(id, 1, -7)) % LH_P * 1e6 + lh_tonumber(lh_sub(id, -6))) % LH_P
  end
  return x * 48271 % LH_P
end
-- a binary digest (a fingerprint, a page id): its first 4 bytes, already uniform
local function lh_hash_digest(d)
  local a, b, c, e = string.byte(d, 1, 4)
  return ((((a or 0) * 256 + (b or 0)) * 256 + (c or 0)) * 256 + (e or 0))
end

local function lh_open(layout, prefix, default_load, hash, kind, ttl)
  local m = redis.call('HMGET', layout, 'n', 'lvl', 'split', 'load')
  local t = {layout = layout, prefix = prefix, n = tonumber(m[1]) or 0, lvl = tonumber(m[2]) or 0,
             split = tonumber(m[3]) or 0, load = tonumber(m[4]) or tonumber(default_load), hash = hash,
             kind = kind or 'hash', ttl = ttl, fresh = m[2] == false, changed = false, grown = false}
  t.size = 2 ^ t.lvl
  t.room = t.load * (t.size + t.split)  -- members it holds before its next split (lh_reserve)
  if not t.fresh and not ttl then  -- an ended job's set: new buckets expire with it (lh_inherit_ttl)
    local left = redis.call('PTTL', layout)
    if left > 0 then t.pttl = left end
  end
  if t.fresh and t.kind == 'set' then  -- bucket 0 exists from the start (sentinel), with the TTL
    redis.call('SADD', prefix .. '0', 0)
    if ttl then redis.call('EXPIRE', prefix .. '0', ttl) end
  end
  return t
end

local function lh_inherit_ttl(t, key)
  if t.pttl and redis.call('PTTL', key) == -1 then redis.call('PEXPIRE', key, t.pttl) end
end

-- the bucket of a member whose hash is h
local function lh_key(t, h)
  local b = h % t.size
  if b < t.split then b = h % (t.size * 2) end
  return t.prefix .. lh_format('%d', b)  -- an integer: %d, not Lua's %.14g of a double (slower)
end

local function lh_bucket(t, member)
  return lh_key(t, t.hash(member))
end

-- one more bucket: the members of bucket `split` whose next bit is set move to split + 2^lvl. Each member is
-- hashed again here once a level: most of a set's upkeep, so this loop does as little else as it can
local function lh_grow(t)
  local split, size, hash = t.split, t.size, t.hash
  local from = t.prefix .. lh_format('%d', split)
  local to = t.prefix .. lh_format('%d', split + size)
  local double = size * 2
  if t.kind == 'set' then
    local members = redis.call('SMEMBERS', from)
    local moved, k = {0}, 1  -- the new bucket's sentinel first
    for i = 1, #members do
      local m = members[i]
      if m ~= '0' and hash(m) % double ~= split then k = k + 1; moved[k] = m end
    end
    redis.call('SADD', to, unpack(moved))
    if t.ttl then redis.call('EXPIRE', to, t.ttl) end
    lh_inherit_ttl(t, to)
    if k > 1 then redis.call('SREM', from, unpack(moved, 2)) end
  else
    local entries = redis.call('HGETALL', from)
    local moved, gone, k = {}, {}, 0
    for i = 1, #entries, 2 do
      local m = entries[i]
      if hash(m) % double ~= split then
        k = k + 1
        gone[k] = m
        moved[2 * k - 1] = m
        moved[2 * k] = entries[i + 1]
      end
    end
    if k > 0 then
      redis.call('HSET', to, unpack(moved))
      redis.call('HDEL', from, unpack(gone))
      lh_inherit_ttl(t, to)
    end
  end
  split = split + 1
  if split == size then
    t.lvl, split, t.size = t.lvl + 1, 0, double
  end
  t.split = split
  t.room = t.load * (t.size + split)
  t.changed, t.grown = true, true
end

-- room for `more` members (before they are added, so no bucket outgrows its compact encoding)
local function lh_reserve(t, more)
  while t.n + more > t.room do lh_grow(t) end
end

-- a hash-kind member (its value "", or `value`): true when it was not there (and is now)
local function lh_add(t, member, value)
  if t.n + 1 > t.room then lh_reserve(t, 1) end
  local key = lh_key(t, t.hash(member))
  if redis.call('HSETNX', key, member, value or '') == 1 then
    t.n, t.changed = t.n + 1, true
    if t.pttl then lh_inherit_ttl(t, key) end
    return true
  end
  return false
end

local function lh_has(t, member)
  return redis.call('HEXISTS', lh_bucket(t, member), member) == 1
end

-- set-kind members members[first..] (first: 1 unless given), grouped by bucket (one SADD each; a bucket's key name
-- made once; a bucket with one member, most of them, needs no list of its own): how many were new
local function lh_add_many(t, members, first)
  first = first or 1
  lh_reserve(t, #members - first + 1)
  local by, hash, size, split = {}, t.hash, t.size, t.split
  for i = first, #members do
    local m = members[i]
    local h = hash(m)
    local b = h % size
    if b < split then b = h % (size * 2) end
    local list = by[b]
    if not list then
      by[b] = m
    elseif type(list) == 'string' then
      by[b] = {list, m}
    else
      list[#list + 1] = m
    end
  end
  local new, prefix = 0, t.prefix
  for b, list in pairs(by) do
    if type(list) == 'string' then
      new = new + redis.call('SADD', prefix .. lh_format('%d', b), list)
    else
      new = new + redis.call('SADD', prefix .. lh_format('%d', b), unpack(list))
    end
  end
  if new > 0 then t.n, t.changed = t.n + new, true end
  return new
end

-- the layout written back: its count, and its shape when it grew (or is new)
local function lh_save(t)
  if t.fresh or t.grown then
    redis.call('HSET', t.layout, 'n', t.n, 'lvl', t.lvl, 'split', t.split, 'load', t.load)
    if t.fresh and t.ttl then redis.call('EXPIRE', t.layout, t.ttl) end
  elseif t.changed then
    redis.call('HSET', t.layout, 'n', t.n)
  end
end
