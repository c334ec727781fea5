-- The collector has these pages on disk (fsync'd): acknowledge them, delete them from
-- the stream and take them off the job's waiting counts. XACK answers 1 only the
-- first time, so acking again (a retry after Redis was away) counts nothing twice.
-- The job's last page on disk, with its requests all done, makes the job done.
-- The acknowledgement carries the collector's lock value (its fencing token): a collector whose
-- lock expired and was taken by another (frozen past its TTL) acknowledges nothing.
-- KEYS[1] the job's stream, KEYS[2] the job's waiting hash, KEYS[3] the job's hash, KEYS[4] the collector lock
-- ARGV[1] consumer group, ARGV[2] the collector's lock value, ARGV[3] job id, ARGV[4] job key templates
-- (keys.job_templates), then pairs of entry id, page bytes
-- Returns how many entries were acknowledged now, or -1 (the lock is not this collector's).
-- include: job_common
if redis.call('GET', KEYS[4]) ~= ARGV[2] then return -1 end
local acked = 0
for i = 5, #ARGV, 2 do
  if redis.call('XACK', KEYS[1], ARGV[1], ARGV[i]) == 1 then
    redis.call('XDEL', KEYS[1], ARGV[i])
    redis.call('HINCRBY', KEYS[2], 'pages', -1)
    redis.call('HINCRBY', KEYS[2], 'bytes', -tonumber(ARGV[i + 1]))
    acked = acked + 1
  end
end
if acked > 0 and (tonumber(redis.call('HGET', KEYS[2], 'pages')) or 0) <= 0 then
  job_check_done(job_keys(ARGV[4], ARGV[3]))
end
return acked
