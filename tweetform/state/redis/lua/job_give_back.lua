-- include: job_common
-- A worker without a heartbeat: the job messages it took and did not finish queuing go back to the
-- inbox, its holds on those jobs end, and it leaves the processors index — in one step, so a stalled
-- worker that comes back (indexes itself, takes a message) between the moves and the removal is never
-- left out of the index holding a message nobody would give back.
-- KEYS: its processing list, the spider's job inbox, the processors index, its heartbeat
-- ARGV: job key templates (keys.job_templates), worker
-- Returns how many messages went back, or -1 when the worker beats (nothing done).
if redis.call('EXISTS', KEYS[4]) == 1 then return -1 end
local moved = 0
while true do
  local raw = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
  if not raw then break end
  moved = moved + 1
  local ok, message = pcall(cjson.decode, raw)
  local job = ok and type(message) == 'table' and message.job or nil
  if type(job) == 'number' then job = tostring(job) end
  if type(job) == 'string' and job ~= '' then
    redis.call('SREM', job_keys(ARGV[1], job).starting, ARGV[2])
  end
end
redis.call('SREM', KEYS[3], ARGV[2])
return moved
