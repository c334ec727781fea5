-- include: job_common
-- include: quota_common
-- KEYS: inflight, deliveries, then per endpoint: its queue and its lanes' (hash, inflight) keys
-- ARGV: worker, lease, job key templates (keys.job_templates), margin, hold (s), reservation id, the server's run id as
--       the worker's connection read it ("": not known), then per endpoint: name, lanes, interval
-- One step for a request: among the endpoints in order, the first whose queue has a
-- request and one of whose lanes has quota now gives its first request, moved into
-- in-flight under a lease, with quota reserved on the lane (an endpoint without lanes
-- needs none). A paused or budget-stopped job's requests met on the way are parked
-- (in this same step, so none is taken between a pause and its parking); a
-- cancelled, finished or purged job's are dropped.
-- A member holding several requests (queue_push.lua) gives its first; a paused job's member is parked
-- whole, with its count of requests.
-- Returns {endpoint, member (one request: "<job>\t<qid>\t<payload>"), lane (1-based, 0: none), marked},
-- or {false, endpoints waiting for quota...}. marked: 1 when the request has an entry in deliveries (another worker may
-- have held it: handed over, released, reclaimed, or a retry; queue_reap/queue_push/queue_reclaim.lua), 0 for a
-- first delivery: pushed once, taken by nobody before (the worker may skip asking whether its page is written).
-- A request of a job created under another redis-server process (its hash's run: the run id then) is never a first
-- delivery: a restart, or a replica taking over, may have brought back data older than what was answered, and any
-- request of the job may then be held by a worker that took it before (that pop lost), or be a copy of one pushed
-- before (its dupe-filter record lost).
local now, margin, hold, rid = redis_now(), tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local k, a = 3, 8
local waiting = {}
while a <= #ARGV do
  local name, nlanes, interval = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local queue, at = KEYS[k], k  -- its lanes' keys follow it
  k, a = k + 1 + 2 * nlanes, a + 3
  if redis.call('ZCARD', queue) > 0 then
    local lane, limit, reset = 0, nil, 0
    if nlanes > 0 then lane, limit, reset = best_lane(at, nlanes, now, margin) end
    if nlanes > 0 and lane == 0 then
      waiting[#waiting + 1] = name
    else
      for _ = 1, 200 do
        local got = redis.call('ZPOPMIN', queue)
        if not got[1] then break end
        local member, score = got[1], got[2]
        local job = job_of(member)
        local jk = job_keys(ARGV[3], job)
        local jstate, jrun = false, false
        if jk then
          local f = redis.call('HMGET', jk.hash, 'state', 'run')
          jstate, jrun = f[1], f[2]
        end
        if jstate == "paused" or jstate == "budget_exhausted" then
          local n = requests_in(member)
          redis.call('ZADD', jk.parked, score, cjson.encode({q = queue, d = member, n = n}))
          redis.call('HINCRBY', jk.hash, 'queued', -n)  -- its state was read: the hash exists (no job_count EXISTS)
          redis.call('HINCRBY', jk.hash, 'parked', n)
        elseif jstate == "cancelled" or jstate == "done" or (jk and not jstate) then
          job_count(jk, 'queued', -requests_in(member))  -- dropped (a purged job has no hash left)
          forget_deliveries(KEYS[2], member)  -- its marks go with it
        else
          -- the member's first request is taken; the others stay, in order, under the next request id
          local qid, first, rest = split_member(member)
          if rest then redis.call('ZADD', queue, score, job .. '\t' .. (tonumber(qid) + 1) .. '\t' .. rest) end
          -- a request of a job whose state was read (its hash exists) or of none (nothing to count)
          if jstate then redis.call('HINCRBY', jk.hash, 'queued', -1) end
          local marked = 1  -- a member of an older tweetform (no id): as if held before
          if qid then
            if ARGV[7] ~= '' and jrun == ARGV[7] then marked = redis.call('HEXISTS', KEYS[2], qid) end
            redis.call('HSET', KEYS[1], qid, cjson.encode({w = ARGV[1], l = ARGV[2], t = now, q = queue, s = score, d = first, j = job}))
            if jstate then redis.call('HINCRBY', jk.hash, 'inflight', 1) end
          end
          if lane > 0 then take_quota(KEYS[at + 2*lane - 1], KEYS[at + 2*lane], limit, reset, now, margin, interval, hold, rid) end
          return {name, first, lane, marked}
        end
      end
    end
  end
end
return {false, unpack(waiting)}
