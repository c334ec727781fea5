-- include: job_common
-- KEYS: inflight, deliveries ; ARGV: worker, min age (s), job key templates (keys.job_templates), held request ids...
-- This worker's in-flight entries that it does not hold (a pop whose reply was
-- lost while Redis was away) go back to their queue, marked in deliveries (0: not a hand-over): the worker may have
-- seen the pop after all (a request it retried whose push has not gone yet is not held either), so whoever takes it
-- next asks whether its page is written (queue_pop.lua's answer).
local held = {}
for i = 4, #ARGV do held[ARGV[i]] = true end
local moved, now = 0, redis_now()
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local e = cjson.decode(all[i + 1])
  if e.w == ARGV[1] and not held[all[i]] and e.t < now - tonumber(ARGV[2]) then
    local jk = job_keys(ARGV[3], e.j)
    redis.call('ZADD', e.q, e.s, e.d)
    redis.call('HDEL', KEYS[1], all[i])
    redis.call('HSETNX', KEYS[2], all[i], 0)
    job_count(jk, 'inflight', -1)
    job_count(jk, 'queued', 1)
    moved = moved + 1
  end
end
return moved
