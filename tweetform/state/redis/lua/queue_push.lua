-- include: job_common
-- include: lhash
-- Queue a batch of requests (a callback's new requests, retries, seeds) in one step.
-- KEYS: seq, inflight, the spider's endpoints set, deliveries
-- ARGV: job key templates (keys.job_templates), dupe-filter bucket load (used by a job's first fingerprint), the number
--       of finished requests to acknowledge after the batch is queued, their (qid, lease, level counter) triples
--       (queue_ack.lua's: job_common's ack_requests), then per request
--       12 fields: queue key, endpoint, job, priority, payload (a request's JSON, or "~" and its arguments packed by
--       its spider), old qid, old lease, dedupe ("f": by fingerprint, "c": by a claim made before, "k": by a claim
--       made here, "": none), its layout, bucket prefix, key (the 20-byte fingerprint; the user's id, decimal), and its
--       level's pending counter
--       ("pending/<level>" in the job's progress hash, "" for none: +1 for a new request, not a retry; queue_ack.lua
--       takes it back, so a level with none pending has every request finished: last_complete_level reads them);
--       dedupe "C" ("K") is a run of "c" ("k") first pages sharing the other fields (no old qid): payloads one a
--       line, keys (ids) comma-separated, in the same order (12 arguments for the run instead of 12 per request:
--       Redis reads each argument)
-- A request replacing one in flight (a retry: old qid) is queued only if the caller still holds
-- that lease: a worker whose lease was reaped and given to another cannot overwrite or delete the
-- new owner's entry. The retry is a new request (a new id): the old one's deliveries count goes with its
-- in-flight entry (nothing else would delete it), and the new id gets an entry of its own (0: no hand-over yet), so
-- its pop says it is not a first delivery (queue_pop.lua): the page it fetches may have been written already (a
-- callback that yielded its page, then met Redis away and asked for it again; a stalled holder's late write).
-- An old qid "+<qid>" is a part split off the request <qid> (a look-up near the end of a budget: cost/budget.py): a new
-- request, queued only while the caller holds <qid>'s lease (a stalled worker's split of a request handed over is not
-- queued: its next holder asks those ids), <qid> staying in flight (its retry replaces it), and marked as a retry is (0):
-- a copy of it may be queued too (the push sent again after its answer was lost), its page written by another worker.
-- A filtered request is queued only if it is new to its job, decided in this same
-- step, so nothing is recorded for a request that did not reach the queue:
-- * "f": its fingerprint is added to the job's dupe filter (compact buckets, lhash.lua);
-- * "c": the first page of a user the job claimed (seen.py): its claim's value, the claimer's tag, is
--   negated once the page is queued (the same few bytes), so the user's page is queued once per job with
--   no fingerprint kept; a user not claimed is refused.
-- * "k": the first page of a user found by a page of a job without max_users: the user is claimed here, in the
--   step that queues its page (the claim is the dupe filter of the user's first page: scrapy-redis's way), so
--   each id costs one lookup, not one in seen_claim.lua and another here. Not claimed: claimed now, queued and
--   marked queued at once (value "-1": no claimer to remember, nothing re-claims it), the layout grown as
--   lhash.lua grows it; claimed, not queued (seen_claim.lua's: the seeds): as "c"; queued before: refused.
--   A job whose claims are gone (purged, expired) claims nothing here: refused.
-- Accepted requests of one queue, job and priority are stored together, as one member
-- "<job>\t<qid>\t<payload>\n<payload>..." (up to 64 requests and ~1 kB), their request ids consecutive
-- from <qid> (the seq counter's): a ZSET member costs ~100 bytes of its own, a request packed by its
-- spider ~15. queue_pop.lua takes them one at a time, in order.
-- Returns one flag per request, in order: "1" queued, "0" not; "k" requests: "2" queued and its user claimed now
-- (new to the job), "1" queued (claimed before), "3" not queued: claimed and queued before, "0" not: the job's
-- claims are gone. A "k" flag other than "0" tells the worker the user is claimed in the job (claims are never undone).
local templates, load = ARGV[1], ARGV[2]
local filters, claims, flags, accepted = {}, {}, {}, {}
local nflags = 0
-- a job's claims, opened once a call (fresh: the job's claims are gone, nothing is created)
local function claims_of(layout, prefix)
  local t = claims[layout]
  if not t then
    t = lh_open(layout, prefix, 1, lh_hash_decimal)
    t.new, t.claimed = 0, 0
    claims[layout] = t
  end
  return t
end
-- a user's first page by its claim ("c": made before; "k": made here when there is none): its flag (above). Once
-- per id of a page: lh_add's steps written out here (the id hashed once)
local function claim_mark(t, key, here)
  if t.fresh then return '0' end
  -- "k": one HSETNX claims a new user, one HGET reads a claimed one: whichever most users of this call have been
  -- so far is tried first (a worker sends mostly new users; late in a crawl many workers send claimed ones)
  local try = here and t.claimed <= t.new
  if try and t.n + 1 > t.room then lh_reserve(t, 1) end
  local bucket = lh_key(t, lh_hash_decimal(key))
  if try and redis.call('HSETNX', bucket, key, '-1') == 1 then
    t.n, t.changed, t.new = t.n + 1, true, t.new + 1
    if t.pttl then lh_inherit_ttl(t, bucket) end
    return '2'
  end
  local tag = redis.call('HGET', bucket, key)
  if not tag then
    if not here then return '0' end  -- "c": never claimed
    lh_add(t, key, '-1')
    t.new = t.new + 1
    return '2'
  end
  if here then t.claimed = t.claimed + 1 end
  if lh_sub(tag, 1, 1) ~= '-' then
    redis.call('HSET', bucket, key, '-' .. tag)
    return '1'
  end
  return here and '3' or '0'  -- queued before
end
local W = 12
local ACKS = 4 + 3 * tonumber(ARGV[3])  -- where the requests begin (the acknowledgements before)
for i = ACKS, #ARGV, W do
  local mode, layout, key = ARGV[i + 7], ARGV[i + 8], ARGV[i + 10]
  if mode == 'C' or mode == 'K' then  -- a run: one accepted request per claim marked now
    local payloads = string.gmatch(ARGV[i + 4], '[^\n]+')
    local here = mode == 'K'
    local t = claims_of(layout, ARGV[i + 9])
    for uid in string.gmatch(key, '[^,]+') do
      local payload = payloads()
      local flag = claim_mark(t, uid, here)
      if flag == '1' or flag == '2' then accepted[#accepted + 1] = {i, payload, ''} end
      nflags = nflags + 1
      flags[nflags] = flag
    end
  else
    local ok = true
    local old = ARGV[i + 5]
    if old ~= '' then  -- a retry's request, or a split part's ("+<qid>"): still held under the caller's lease
      local raw = redis.call('HGET', KEYS[2], string.match(old, '^%+?(.*)$'))
      if not raw or cjson.decode(raw).l ~= ARGV[i + 6] then ok = false end
    end
    if ok and mode == 'f' then
      local t = filters[layout]
      if not t then
        t = lh_open(layout, ARGV[i + 9], load, lh_hash_digest)
        filters[layout] = t
      end
      ok = lh_add(t, key)
    end
    local flag = ok and '1' or '0'
    if ok and (mode == 'c' or mode == 'k') then
      flag = claim_mark(claims_of(layout, ARGV[i + 9]), key, mode == 'k')
      ok = flag == '1' or flag == '2'
    end
    if ok then accepted[#accepted + 1] = {i, ARGV[i + 4], old} end
    nflags = nflags + 1
    flags[nflags] = flag
  end
end
for _, t in pairs(filters) do lh_save(t) end
for _, t in pairs(claims) do if t.changed then lh_save(t) end end
if #accepted == 0 then
  ack_requests(KEYS[2], KEYS[4], templates, 4, ACKS - 1)
  return table.concat(flags)
end

-- a member holds at most this many requests / about this many bytes: each pop copies the rest of its member
local MEMBER_REQUESTS, MEMBER_BYTES = 64, 1024
-- group by queue, job and priority (in order of first appearance), at most MEMBER_REQUESTS or ~MEMBER_BYTES a member;
-- count each job's requests and the endpoints pushed to (a page's requests mostly share all three)
local groups, order, endpoints, jobs = {}, {}, {}, {}
local g, jd
for _, a in ipairs(accepted) do
  local i, payload, old = a[1], a[2], a[3]
  local queue, job, priority = ARGV[i], ARGV[i + 2], ARGV[i + 3]
  if not g or g.queue ~= queue or g.job ~= job or g.p ~= priority or #g.items >= MEMBER_REQUESTS or g.bytes >= MEMBER_BYTES then
    local by_queue = groups[queue]
    if not by_queue then by_queue = {}; groups[queue] = by_queue end
    local id = job .. '\n' .. priority
    g = by_queue[id]
    if not g or #g.items >= MEMBER_REQUESTS or g.bytes >= MEMBER_BYTES then
      g = {queue = queue, job = job, p = priority, items = {}, bytes = 0}
      by_queue[id] = g
      order[#order + 1] = g
    end
    endpoints[ARGV[i + 1]] = true
    jd = jobs[job]
    if not jd then jd = {0, 0}; jobs[job] = jd end
  end
  local items = g.items
  items[#items + 1] = payload
  g.bytes = g.bytes + #payload
  jd[1] = jd[1] + 1
  local part = string.sub(old, 1, 1) == '+'  -- a new request: the one it was split from stays in flight
  if old ~= '' then
    g.retries = g.retries or {}
    g.retries[#g.retries + 1] = #items  -- its place in the member: its new id below
    if not part then
      if redis.call('HDEL', KEYS[2], old) == 1 then jd[2] = jd[2] + 1 end
      redis.call('HDEL', KEYS[4], old)
    end
  end
  if (old == '' or part) and ARGV[i + 11] ~= '' then  -- a new request (a retry stays pending as it was)
    local field = ARGV[i + 11]
    jd.levels = jd.levels or {}
    jd.levels[field] = (jd.levels[field] or 0) + 1
  end
end
local seq = redis.call('INCRBY', KEYS[1], #accepted) - #accepted
for _, m in ipairs(order) do
  redis.call('ZADD', m.queue, -tonumber(m.p) * 1e12 + seq + 1, m.job .. '\t' .. (seq + 1) .. '\t' .. table.concat(m.items, '\n'))
  if m.retries then
    for _, at in ipairs(m.retries) do redis.call('HSET', KEYS[4], '' .. (seq + at), 0) end  -- the id queue_pop.lua gives it
  end
  seq = seq + #m.items
end

local names = {}
for e in pairs(endpoints) do names[#names + 1] = e end
redis.call('SADD', KEYS[3], unpack(names))  -- workers find the queues here (no keyspace SCAN)
for job, d in pairs(jobs) do
  local jk = job_keys(templates, job)
  job_count(jk, 'queued', d[1])
  if d[2] > 0 then job_count(jk, 'inflight', -d[2]) end
  if d.levels and jk and redis.call('EXISTS', jk.hash) == 1 then  -- once per job and level a call
    for field, n in pairs(d.levels) do redis.call('HINCRBY', jk.progress, field, n) end
  end
end
-- the page that produced them is finished only now: a push Redis refused (out of memory: its first write denied, an
-- error) acknowledges nothing, and the page stays in flight, its job not done, until its requests are queued
ack_requests(KEYS[2], KEYS[4], templates, 4, ACKS - 1)
return table.concat(flags)
