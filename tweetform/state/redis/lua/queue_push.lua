-- include: job_common
-- include: lhash
-- Queue a batch of requests (a callback's new requests, retries, seeds) in one step.
-- KEYS: seq, inflight, the spider's endpoints set
-- ARGV: job key templates (keys.job_templates), dupe-filter bucket load (used by a job's first fingerprint), then per request
--       11 fields: queue key, endpoint, job, priority, payload (a request's JSON, or "~" and its arguments packed by
--       its spider), old qid, old lease, dedupe ("f": by fingerprint, "c": by claim, "": none), its layout, bucket
--       prefix, and key (the 20-byte fingerprint; the claimed user's id, decimal)
-- A request replacing one in flight (a retry: old qid) is queued only if the caller still holds
-- that lease: a worker whose lease was reaped and given to another cannot overwrite or delete the
-- new owner's entry. A filtered request is queued only if it is new to its job, decided in this same
-- step, so nothing is recorded for a request that did not reach the queue:
-- * "f": its fingerprint is added to the job's dupe filter (compact buckets, lhash.lua);
-- * "c": the first page of a user the job claimed (seen.py): its claim's value, the claimer's tag, is
--   negated once the page is queued (the same few bytes), so the user's page is queued once per job with
--   no fingerprint kept; a user not claimed is refused.
-- Accepted requests of one queue, job and priority are stored together, as one member
-- "<job>\t<qid>\t<payload>\n<payload>..." (up to 256 requests and ~4 kB), their request ids consecutive
-- from <qid> (the seq counter's): a ZSET member costs ~100 bytes of its own, a request packed by its
-- spider ~15. queue_pop.lua takes them one at a time, in order.
-- Returns one flag per request, in order: "1" queued, "0" not.
local templates, load = ARGV[1], ARGV[2]
local filters, claims, flags, accepted = {}, {}, {}, {}
local W = 11
for i = 3, #ARGV, W do
  local ok = true
  local old = ARGV[i + 5]
  if old ~= '' then
    local raw = redis.call('HGET', KEYS[2], old)
    if not raw or cjson.decode(raw).l ~= ARGV[i + 6] then ok = false end
  end
  local mode, layout, key = ARGV[i + 7], ARGV[i + 8], ARGV[i + 10]
  if ok and mode == 'f' then
    local t = filters[layout]
    if not t then
      t = lh_open(layout, ARGV[i + 9], load, lh_hash_digest)
      filters[layout] = t
    end
    ok = lh_add(t, key)
  elseif ok and mode == 'c' then
    local t = claims[layout]
    if not t then
      t = lh_open(layout, ARGV[i + 9], 1, lh_hash_decimal)  -- read only: never saved
      claims[layout] = t
    end
    local bucket = lh_bucket(t, key)
    local tag = not t.fresh and redis.call('HGET', bucket, key)
    if tag and string.sub(tag, 1, 1) ~= '-' then
      redis.call('HSET', bucket, key, '-' .. tag)
    else
      ok = false  -- queued before, or never claimed
    end
  end
  if ok then accepted[#accepted + 1] = i end
  flags[#flags + 1] = ok and '1' or '0'
end
for _, t in pairs(filters) do lh_save(t) end
if #accepted == 0 then return table.concat(flags) end

-- group by queue, job and priority (in order of first appearance), at most 256 requests or ~4 kB a member
local groups, order = {}, {}
for _, i in ipairs(accepted) do
  local id = ARGV[i] .. '\n' .. ARGV[i + 2] .. '\n' .. ARGV[i + 3]
  local g = groups[id]
  if not g or #g.items >= 256 or g.bytes >= 4096 then
    g = {queue = ARGV[i], job = ARGV[i + 2], priority = tonumber(ARGV[i + 3]), items = {}, bytes = 0}
    groups[id] = g
    order[#order + 1] = g
  end
  g.items[#g.items + 1] = ARGV[i + 4]
  g.bytes = g.bytes + #ARGV[i + 4]
end
local seq = redis.call('INCRBY', KEYS[1], #accepted) - #accepted
for _, g in ipairs(order) do
  redis.call('ZADD', g.queue, -g.priority * 1e12 + seq + 1, g.job .. '\t' .. (seq + 1) .. '\t' .. table.concat(g.items, '\n'))
  seq = seq + #g.items
end

local endpoints, jobs = {}, {}
for _, i in ipairs(accepted) do
  endpoints[ARGV[i + 1]] = true
  local d = jobs[ARGV[i + 2]]
  if not d then d = {0, 0}; jobs[ARGV[i + 2]] = d end
  d[1] = d[1] + 1
  if ARGV[i + 5] ~= '' and redis.call('HDEL', KEYS[2], ARGV[i + 5]) == 1 then d[2] = d[2] + 1 end
end
local names = {}
for e in pairs(endpoints) do names[#names + 1] = e end
redis.call('SADD', KEYS[3], unpack(names))  -- workers find the queues here (no keyspace SCAN)
for job, d in pairs(jobs) do
  local jk = job_keys(templates, job)
  job_count(jk, 'queued', d[1])
  if d[2] > 0 then job_count(jk, 'inflight', -d[2]) end
end
return table.concat(flags)
