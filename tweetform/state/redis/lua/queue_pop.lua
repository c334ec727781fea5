-- include: job_common
-- KEYS: inflight, queues... ; ARGV: worker, lease, job key prefix, endpoints...
-- Takes the first request of the first non-empty queue into in-flight, under a
-- lease. A paused or budget-stopped job's requests met on the way are parked
-- (in this same step, so none is taken between a pause and its parking); a
-- cancelled, finished or purged job's are dropped.
local now = redis_now()
for i = 2, #KEYS do
  for _ = 1, 200 do
    local got = redis.call('ZPOPMIN', KEYS[i])
    if not got[1] then break end
    local member, score = got[1], got[2]
    local job = job_of(member)
    local jk = nil
    local state = false
    if job ~= '' then
      jk = ARGV[3] .. job
      state = redis.call('HGET', jk, 'state')
    end
    job_count(jk, 'queued', -1)
    if state == 'paused' or state == 'budget_exhausted' then
      redis.call('ZADD', jk .. ':parked', score, cjson.encode({q = KEYS[i], d = member}))
      job_count(jk, 'parked', 1)
    elseif state == 'cancelled' or state == 'done' or (jk and not state) then
      -- dropped (a purged job has no hash left)
    else
      local qid = string.match(member, '"tweetform_qid":"(%x+)"')
      local n = 0
      if qid then
        n = tonumber(redis.call('HGET', KEYS[1] .. ':deliveries', qid)) or 0
        redis.call('HSET', KEYS[1], qid, cjson.encode({w = ARGV[1], l = ARGV[2], t = now, q = KEYS[i], s = score, d = member, j = job}))
        job_count(jk, 'inflight', 1)
      end
      return {ARGV[i + 2], member, tostring(n)}
    end
  end
end
return false
