-- helpers shared by the queue and job scripts. A job's hash (KEYS built from the
-- job key prefix ARGV) counts its requests: queued, inflight, parked; a set
-- <job>:starting holds the workers queuing its seeds. A running job is done when
-- all are zero and no page of it waits for the collector (<job>:pages:waiting);
-- the time is Redis's own (TIME), the same for every host.
local function redis_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1e6
end
local function job_count(jk, field, n)
  -- a purged job's hash is not brought back by a late push, pop or ack
  if jk and redis.call('EXISTS', jk) == 1 then redis.call('HINCRBY', jk, field, n) end
end
local function job_check_done(jk)
  if not jk then return 0 end
  local f = redis.call('HMGET', jk, 'state', 'queued', 'inflight', 'parked')
  if f[1] == 'running' and (tonumber(f[2]) or 0) <= 0 and (tonumber(f[3]) or 0) <= 0 and (tonumber(f[4]) or 0) <= 0
     and redis.call('SCARD', jk .. ':starting') == 0
     -- collect mode: not done while pages wait for `scrapy collect` (its ack checks again)
     and (tonumber(redis.call('HGET', jk .. ':pages:waiting', 'pages')) or 0) <= 0 then
    redis.call('HSET', jk, 'state', 'done', 'finished_at', tostring(redis_now()))
    return 1
  end
  return 0
end
-- a queue member is "<job>\t<request JSON>" (JSON never holds a raw tab)
local function job_of(member)
  local job = string.match(member, '^([^\t]*)\t')
  return job or ''
end
