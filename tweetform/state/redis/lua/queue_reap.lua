-- include: job_common
-- KEYS: inflight, dead-letter list, deliveries ; ARGV: heartbeat key prefix, suffix, worker-to-release-or-"", job key templates,
--       max deliveries, dead-letter cap
-- In-flight requests of workers whose heartbeat expired go back to their queue
-- (a stopping worker releases its own). Each hand-over of a dead worker's
-- request counts; one handed over max-deliveries times is dead-lettered with the
-- reason instead (a failed page of its job), and returned so the caller records it in the errors bucket.
-- Every request put back is marked in deliveries (a stopping worker's own with 0, not a hand-over): whoever takes it
-- next asks whether its page is written already (queue_pop.lua's answer).
-- Returns {moved, dead-lettered members...}.
local moved, dead = 0, {}
local max = tonumber(ARGV[5])
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local e = cjson.decode(all[i + 1])
  local own = ARGV[3] ~= '' and e.w == ARGV[3]
  if own or redis.call('EXISTS', ARGV[1] .. e.w .. ARGV[2]) == 0 then
    local jk = job_keys(ARGV[4], e.j)
    redis.call('HDEL', KEYS[1], all[i])
    job_count(jk, 'inflight', -1)
    local n = 0
    if own then redis.call('HSETNX', KEYS[3], all[i], 0) else n = redis.call('HINCRBY', KEYS[3], all[i], 1) end
    if max > 0 and n >= max then
      redis.call('HDEL', KEYS[3], all[i])
      redis.call('LPUSH', KEYS[2], cjson.encode({request = e.d, reason = 'handed over ' .. n .. ' times: the workers taking it died or stalled', at = redis_now()}))
      redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[6]) - 1)
      dead[#dead + 1] = e.d
      -- the failure counts before the job can be done (its errors record comes later, from the reaping worker)
      if jk and redis.call('EXISTS', jk.hash) == 1 then
        redis.call('HINCRBY', jk.progress, 'failed', 1)
        local level = level_of(string.match(e.d, '^[^\t]*\t[^\t]*\t(.*)$') or string.match(e.d, '^[^\t]*\t(.*)$') or '')
        if level then redis.call('HINCRBY', jk.progress, 'failed/' .. level, 1) end  -- its level is not complete
      end
      job_check_done(jk)
    else
      redis.call('ZADD', e.q, e.s, e.d)
      job_count(jk, 'queued', 1)
    end
    moved = moved + 1
  end
end
return {moved, unpack(dead)}
