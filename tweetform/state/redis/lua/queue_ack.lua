-- include: job_common
-- KEYS: inflight, deliveries ; ARGV: job key templates (keys.job_templates), (qid, lease)...
-- Finished requests leave in-flight, each only under the lease it was taken
-- with (a late ack from a worker whose lease was reaped deletes nothing).
-- Returns the number acknowledged.
local acked = 0
for i = 2, #ARGV, 2 do
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
    end
  end
end
return acked
