-- include: job_common
-- KEYS: job hash ; ARGV: new state (running|paused|cancelled|budget_exhausted), job id, job key templates (keys.job_templates)
-- Pause, resume, cancel in one step. Resuming puts every parked request back in
-- its queue in the same step, so none is stranded; cancelling drops them.
-- Returns 0 when the job is unknown, 1 otherwise.
local jk, want = job_keys(ARGV[3], ARGV[2]), ARGV[1]
local state = redis.call('HGET', jk.hash, 'state')
if not state then return 0 end
if state == 'done' or state == 'cancelled' then
  if want ~= 'running' then return 1 end  -- final; resuming a finished job re-checks it below
end
local parked = jk.parked
if want == 'running' then
  local all = redis.call('ZRANGE', parked, 0, -1, 'WITHSCORES')
  local n = 0
  for i = 1, #all, 2 do
    local entry = cjson.decode(all[i])
    redis.call('ZADD', entry.q, all[i + 1], entry.d)
    n = n + (entry.n or 1)  -- a parked member may hold several requests (queue_pop.lua)
  end
  redis.call('DEL', parked)
  if n > 0 then  -- never HINCRBY by -0: Redis reads "-0" as no integer
    redis.call('HINCRBY', jk.hash, 'parked', -n)
    redis.call('HINCRBY', jk.hash, 'queued', n)
  end
  redis.call('HSET', jk.hash, 'state', 'running')
  redis.call('HDEL', jk.hash, 'finished_at')
  job_check_done(jk)
  return 1
end
if want == 'cancelled' then
  local n = 0
  for _, raw in ipairs(redis.call('ZRANGE', parked, 0, -1)) do n = n + (cjson.decode(raw).n or 1) end
  redis.call('DEL', parked)
  if n > 0 then redis.call('HINCRBY', jk.hash, 'parked', -n) end
  redis.call('HSET', jk.hash, 'state', 'cancelled')
  redis.call('HSETNX', jk.hash, 'finished_at', tostring(redis_now()))
  return 1
end
redis.call('HSET', jk.hash, 'state', want)
if want == 'budget_exhausted' or want == 'done' then redis.call('HSETNX', jk.hash, 'finished_at', tostring(redis_now())) end
return 1
