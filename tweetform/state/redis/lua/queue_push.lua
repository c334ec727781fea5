-- include: job_common
-- include: lhash
-- Queue a batch of requests (a callback's new requests, retries, seeds) in one step.
-- KEYS: seq, inflight, the spider's endpoints set
-- ARGV: job key templates (keys.job_templates), dupe-filter bucket load (used by a job's first fingerprint), then per request
--       9 fields: queue key, endpoint, dupe-filter layout ("": not filtered), its bucket prefix,
--       fingerprint (20 bytes), priority, member, old qid, old lease
-- A request replacing one in flight (a retry: old qid) is queued only if the caller still holds
-- that lease: a worker whose lease was reaped and given to another cannot overwrite or delete the
-- new owner's entry. A filtered request is queued only if its fingerprint is new to its job's
-- dupe filter (compact buckets, lhash.lua), added in this same step: a fingerprint is never
-- recorded for a request that did not reach the queue.
-- Returns one flag per request, in order: "1" queued, "0" not.
local templates, load = ARGV[1], ARGV[2]
local filters, flags, accepted = {}, {}, {}
for i = 3, #ARGV, 9 do
  local ok = true
  local old = ARGV[i + 7]
  if old ~= '' then
    local raw = redis.call('HGET', KEYS[2], old)
    if not raw or cjson.decode(raw).l ~= ARGV[i + 8] then ok = false end
  end
  local layout, fp = ARGV[i + 2], ARGV[i + 4]
  if ok and layout ~= '' and fp ~= '' then
    local t = filters[layout]
    if not t then
      t = lh_open(layout, ARGV[i + 3], load, lh_hash_digest)
      filters[layout] = t
    end
    ok = lh_add(t, fp)
  end
  if ok then accepted[#accepted + 1] = i end
  flags[#flags + 1] = ok and '1' or '0'
end
for _, t in pairs(filters) do lh_save(t) end
if #accepted == 0 then return table.concat(flags) end

local seq = redis.call('INCRBY', KEYS[1], #accepted) - #accepted
local queues, endpoints, jobs = {}, {}, {}
for n, i in ipairs(accepted) do
  local member = ARGV[i + 6]
  local z = queues[ARGV[i]]
  if not z then z = {}; queues[ARGV[i]] = z end
  z[#z + 1] = -tonumber(ARGV[i + 5]) * 1e12 + seq + n
  z[#z + 1] = member
  endpoints[ARGV[i + 1]] = true
  local job = job_of(member)
  local d = jobs[job]
  if not d then d = {0, 0}; jobs[job] = d end
  d[1] = d[1] + 1
  if ARGV[i + 7] ~= '' and redis.call('HDEL', KEYS[2], ARGV[i + 7]) == 1 then d[2] = d[2] + 1 end
end
for queue, z in pairs(queues) do
  for s = 1, #z, 1000 do  -- unpack's stack is bounded: 500 requests a ZADD
    redis.call('ZADD', queue, unpack(z, s, math.min(s + 999, #z)))
  end
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
