-- include: job_common
-- KEYS: a dead worker's holds set ; ARGV: job key templates (keys.job_templates), worker
-- The worker died (no heartbeat) while queuing the seeds of these jobs: its holds
-- end, and each job is done if nothing else of it is left. Returns how many.
local jobs = redis.call('SMEMBERS', KEYS[1])
for _, job in ipairs(jobs) do
  local jk = job_keys(ARGV[1], job)
  redis.call('SREM', jk.starting, ARGV[2])
  job_check_done(jk)
end
redis.call('DEL', KEYS[1])
return #jobs
