-- helpers shared by the queue and job scripts. A job's keys come from keys.py: the scripts are
-- given keys.job_templates() (one key a line, "{job}" where the job id goes) and read the keys
-- of a job id met inside them (a queued request's, an in-flight entry's) with job_keys. A job's
-- hash counts its requests: queued, inflight, parked; its starting set holds the workers queuing
-- its seeds. A running job is done when all are zero and no page of it waits for the collector
-- (its pages-waiting hash); the time is Redis's own (TIME), the same for every host.
local function redis_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1e6
end
local JOB_KEY_LINES = {hash = 1, progress = 2, starting = 3, parked = 4, waiting = 5}
local job_keys_seen = {}
-- the keys of a job ({hash, progress, starting, parked, waiting}), or nil for no job; each key is built when first
-- read (a pop reads the hash only: building the five cost a pop ~5 µs)
local function job_keys(templates, job)
  if not job or job == '' then return nil end
  local jk = job_keys_seen[job]
  if jk then return jk end
  jk = setmetatable({}, {__index = function(t, name)
    local line = JOB_KEY_LINES[name]
    if not line then return nil end
    local from = 1
    for _ = 2, line do
      from = string.find(templates, '\n', from, true)
      if not from then return nil end
      from = from + 1
    end
    local to = (string.find(templates, '\n', from, true) or #templates + 1) - 1
    local s, e = string.find(templates, '{job}', from, true)
    local key = string.sub(templates, from, s - 1) .. job .. string.sub(templates, e + 1, to)
    rawset(t, name, key)
    return key
  end})
  job_keys_seen[job] = jk
  return jk
end
local function job_count(jk, field, n)
  -- a purged job's hash is not brought back by a late push, pop or ack
  if jk and redis.call('EXISTS', jk.hash) == 1 then redis.call('HINCRBY', jk.hash, field, n) end
end
local function job_check_done(jk)
  if not jk then return 0 end
  local f = redis.call('HMGET', jk.hash, 'state', 'queued', 'inflight', 'parked')
  if f[1] == 'running' and (tonumber(f[2]) or 0) <= 0 and (tonumber(f[3]) or 0) <= 0 and (tonumber(f[4]) or 0) <= 0
     and redis.call('SCARD', jk.starting) == 0
     -- collect mode: not done while pages wait for `scrapy collect` (its ack checks again)
     and (tonumber(redis.call('HGET', jk.waiting, 'pages')) or 0) <= 0 then
    redis.call('HSET', jk.hash, 'state', 'done', 'finished_at', tostring(redis_now()))
    return 1
  end
  return 0
end
-- a queue member is "<job>\t<request id>\t<payload>", or several requests of a job with consecutive ids:
-- "<job>\t<first id>\t<payload>\n<payload>..." (queue_push.lua; a payload is JSON, which never holds a raw
-- tab or newline, or a spider's packed arguments); an older tweetform's member is "<job>\t<request JSON>"
local function job_of(member)
  local job = string.match(member, '^([^\t]*)\t')
  return job or ''
end
-- how many requests a member holds
local function requests_in(member)
  local _, newlines = string.gsub(member, '\n', '')
  return newlines + 1
end
-- a member's first request id, its first request as a member of its own, and the rest's payloads (nil: none)
local function split_member(member)
  local tab1 = string.find(member, '\t', 1, true)  -- plain finds: no pattern walks the member's ~KB of payloads
  local tab2 = tab1 and string.find(member, '\t', tab1 + 1, true)
  if not tab2 then  -- an older tweetform's member: its id is inside its JSON
    local ok, request = pcall(cjson.decode, tab1 and string.sub(member, tab1 + 1) or '')
    if ok and type(request) == 'table' and type(request.meta) == 'table' then return request.meta.tweetform_qid, member, nil end
    return nil, member, nil
  end
  local qid = string.sub(member, tab1 + 1, tab2 - 1)
  local nl = string.find(member, '\n', tab2 + 1, true)
  if not nl then return qid, member, nil end
  return qid, string.sub(member, 1, nl - 1), string.sub(member, nl + 1)
end
-- a member dropped whole (its job cancelled or purged, `scrapy admin clear-queue`): the deliveries entries of its
-- requests go with it (its first one handed over, released or reclaimed; any a retry: queue_push.lua marks those)
local function forget_deliveries(deliveries, member)
  local qid = split_member(member)
  if not qid then return end
  local first, n = tonumber(qid), requests_in(member)
  if not first or n == 1 then redis.call('HDEL', deliveries, qid); return end
  local ids = {}
  for i = 0, n - 1 do ids[#ids + 1] = '' .. (first + i) end
  redis.call('HDEL', deliveries, unpack(ids))
end
-- the BFS level a request's payload names (a packed "~<user>,<level>[,...]": NetworkSpider; JSON: its
-- tweetform_ctx depth), or nil: a page failed for good counts at its level too (failed/<level>, which
-- RedisJobStore.last_complete_level reads), as page_written.lua counts it
local function level_of(payload)
  local level = tonumber(string.match(payload, '^~[^,]*,(%d+)'))
  if level or string.sub(payload, 1, 1) ~= '{' then return level end
  local ok, request = pcall(cjson.decode, payload)
  local ctx = ok and type(request) == 'table' and type(request.meta) == 'table' and request.meta.tweetform_ctx
  if type(ctx) == 'table' and type(ctx.depth) == 'number' then return ctx.depth end
  return nil
end
-- finished requests leave in-flight (ARGV[from..to]: qid, lease, level counter triples), each only under the lease
-- it was taken with (a late ack from a worker whose lease was reaped deletes nothing); the level counter
-- ("pending/<level>" in the job's progress hash, "" for none) takes back what queue_push.lua added.
-- queue_ack.lua, and queue_push.lua after the requests it queued: an ack never runs when their push failed.
-- Returns the number acknowledged.
local function ack_requests(inflight, deliveries, templates, from, to)
  local acked, levels = 0, {}
  for i = from, to, 3 do
    local raw = redis.call('HGET', inflight, ARGV[i])
    if raw then
      local e = cjson.decode(raw)
      if e.l == ARGV[i + 1] then
        redis.call('HDEL', inflight, ARGV[i])
        redis.call('HDEL', deliveries, ARGV[i])
        acked = acked + 1
        local jk = job_keys(templates, e.j)
        job_count(jk, 'inflight', -1)
        job_check_done(jk)
        if jk and ARGV[i + 2] ~= '' then
          local by_field = levels[e.j]
          if not by_field then by_field = {}; levels[e.j] = by_field end
          by_field[ARGV[i + 2]] = (by_field[ARGV[i + 2]] or 0) + 1
        end
      end
    end
  end
  for job, by_field in pairs(levels) do  -- once per job and level a call; a purged job's hash is not brought back
    local jk = job_keys(templates, job)
    if redis.call('EXISTS', jk.hash) == 1 then
      for field, n in pairs(by_field) do redis.call('HINCRBY', jk.progress, field, -n) end
    end
  end
  return acked
end
