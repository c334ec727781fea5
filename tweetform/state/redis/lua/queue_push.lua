-- include: job_common
-- KEYS: queue, seq, inflight, dupefilter-or-"", the spider's endpoints set
-- ARGV: job key prefix, fingerprint-or-"", priority, member, old qid, old lease, endpoint
-- A request replacing one in flight (a retry: old qid) is queued only if the
-- caller still holds that lease: a worker whose lease was reaped and given to
-- another cannot overwrite or delete the new owner's entry.
if ARGV[5] ~= '' then
  local raw = redis.call('HGET', KEYS[3], ARGV[5])
  if not raw then return 0 end
  local e = cjson.decode(raw)
  if e.l ~= ARGV[6] then return 0 end
end
if KEYS[4] ~= '' and ARGV[2] ~= '' then
  if redis.call('SADD', KEYS[4], ARGV[2]) == 0 then return 0 end
end
local job = job_of(ARGV[4])
local jk = nil
if job ~= '' then jk = ARGV[1] .. job end
local seq = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], -tonumber(ARGV[3]) * 1e12 + seq, ARGV[4])
redis.call('SADD', KEYS[5], ARGV[7])  -- workers find the queue here (no keyspace SCAN)
job_count(jk, 'queued', 1)
if ARGV[5] ~= '' and redis.call('HDEL', KEYS[3], ARGV[5]) == 1 then job_count(jk, 'inflight', -1) end
return 1
