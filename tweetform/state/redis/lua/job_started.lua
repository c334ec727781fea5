-- include: job_common
-- KEYS: job hash, processing list, worker's holds set ; ARGV: worker, message, job id, job key templates (keys.job_templates)
-- A job message's seeds are queued: the worker's hold on the job ends (the job
-- may be done at once if it had nothing to fetch) and the message leaves the
-- worker's processing list.
local jk = job_keys(ARGV[4], ARGV[3])
redis.call('SREM', jk.starting, ARGV[1])
if KEYS[3] and KEYS[3] ~= "" then redis.call('SREM', KEYS[3], ARGV[3]) end
if KEYS[2] and KEYS[2] ~= "" then redis.call("LREM", KEYS[2], 1, ARGV[2]) end
return job_check_done(jk)
