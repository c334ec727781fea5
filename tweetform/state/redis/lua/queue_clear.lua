-- include: job_common
-- `scrapy admin clear-queue`: drop the first members of an endpoint queue, up to ARGV[2] a step. Each request
-- they hold (a member may hold several: queue_push.lua) leaves its job's queued count and counts as a page of
-- the job failed for good (at its level when the request names one: failed/<depth>, as page_written.lua and
-- queue_reap.lua count them), so the job ends (scrapy wait returns, non-zero) instead of waiting forever for
-- requests nobody will fetch.
-- A dropped request's deliveries entry (handed over or given back, or a retry: queue_push.lua) goes with it.
-- KEYS: the queue, deliveries ; ARGV: job key templates (keys.job_templates), members per step
-- Returns {requests dropped, members the queue still holds}.
local got = redis.call('ZPOPMIN', KEYS[1], tonumber(ARGV[2]))
local jobs, dropped = {}, 0
for i = 1, #got, 2 do
  local member = got[i]
  local job = job_of(member)
  forget_deliveries(KEYS[2], member)
  local payloads = string.match(member, '^[^\t]*\t[^\t]*\t(.*)$') or string.match(member, '^[^\t]*\t(.*)$') or ''
  local d = jobs[job]
  if not d then d = {n = 0, levels = {}}; jobs[job] = d end
  for p in string.gmatch(payloads, '[^\n]+') do
    local level = level_of(p)
    if level then d.levels[level] = (d.levels[level] or 0) + 1 end
    d.n = d.n + 1
  end
  dropped = dropped + requests_in(member)
end
for job, d in pairs(jobs) do
  local jk = job_keys(ARGV[1], job)
  if jk and redis.call('EXISTS', jk.hash) == 1 then
    redis.call('HINCRBY', jk.hash, 'queued', -d.n)
    redis.call('HINCRBY', jk.progress, 'failed', d.n)
    for level, n in pairs(d.levels) do redis.call('HINCRBY', jk.progress, 'failed/' .. level, n) end
    job_check_done(jk)
  end
end
return {dropped, redis.call('ZCARD', KEYS[1])}
