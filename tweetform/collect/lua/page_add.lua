-- A worker hands one page to the collector: XADD it to its job's stream unless
-- what already waits there is at the cap (backpressure: the worker tries again later).
-- Checked and counted in one script, so several workers together never pass the cap
-- by more than one page.
-- KEYS[1] the job's stream, KEYS[2] the job's waiting hash (pages, bytes, peak: the most bytes
-- ever waiting), KEYS[3] SET of jobs with a stream, KEYS[4] the job's hash (optional): a page of a job that
-- ended (control.expire_ended marked the hash "expiring" with the TTL) makes a stream that expires with the job
-- ARGV[1] job id, ARGV[2] page bytes, ARGV[3] cap in bytes (<= 0: none), ARGV[4..] field, value, ...
-- Returns the bytes waiting once the page is in, or -1 (at the cap: nothing added).
local size = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local waiting = tonumber(redis.call('HGET', KEYS[2], 'bytes') or '0')
if cap > 0 and waiting >= cap then
  return -1
end
local fields = {}
for i = 4, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
redis.call('XADD', KEYS[1], '*', unpack(fields))
redis.call('HINCRBY', KEYS[2], 'pages', 1)
redis.call('SADD', KEYS[3], ARGV[1])
local now = redis.call('HINCRBY', KEYS[2], 'bytes', size)
if now > tonumber(redis.call('HGET', KEYS[2], 'peak') or '0') then
  redis.call('HSET', KEYS[2], 'peak', now)
end
local ttl = KEYS[4] and redis.call('HGET', KEYS[4], 'expiring')
if ttl then
  redis.call('EXPIRE', KEYS[1], ttl, 'NX')
  redis.call('EXPIRE', KEYS[2], ttl, 'NX')
end
return now
