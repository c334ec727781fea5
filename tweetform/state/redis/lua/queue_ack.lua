-- include: job_common
-- KEYS: inflight, deliveries ; ARGV: job key templates (keys.job_templates), (qid, lease, level counter)...
-- Finished requests leave in-flight, each only under the lease it was taken
-- with (a late ack from a worker whose lease was reaped deletes nothing). The level counter
-- ("pending/<level>" in the job's progress hash, "" for none) takes back what queue_push.lua added.
-- Returns the number acknowledged.
local acked, levels = 0, {}
for i = 2, #ARGV, 3 do
  local raw = redis.call('HGET', KEYS[1], ARGV[i])
  if raw then
    local e = cjson.decode(raw)
    if e.l == ARGV[i + 1] then
      redis.call('HDEL', KEYS[1], ARGV[i])
      redis.call('HDEL', KEYS[2], ARGV[i])
      acked = acked + 1
      local jk = job_keys(ARGV[1], e.j)
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
  local jk = job_keys(ARGV[1], job)
  if redis.call('EXISTS', jk.hash) == 1 then
    for field, n in pairs(by_field) do redis.call('HINCRBY', jk.progress, field, -n) end
  end
end
return acked
