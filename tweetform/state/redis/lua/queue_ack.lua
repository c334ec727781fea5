-- include: job_common
-- KEYS: inflight, deliveries ; ARGV: job key templates (keys.job_templates), (qid, lease, level counter)...
-- Finished requests leave in-flight, each only under the lease it was taken with (a late ack from a worker whose
-- lease was reaped deletes nothing): job_common's ack_requests. A page's new requests go with its acknowledgement
-- in queue_push.lua instead (acknowledged there only once they are queued); this one acknowledges alone.
-- Returns the number acknowledged.
return ack_requests(KEYS[1], KEYS[2], ARGV[1], 2, #ARGV)
