"""Request meta keys that components of several packages read (spiders, middlewares, cost, proxies).

A module of its own, importing nothing, so that a middleware can read what a spider set (and the
other way round) without one package importing the other."""

META_CTX = "tweetform_ctx"  # marks a tweetform API page and carries its context (endpoint key, target, level, ...)
#: a context key: the answer is billed although no page of it is written (a screen-name look-up),
#: so the cost middleware charges its body (tweetform.cost.middleware)
BILL_UNWRITTEN = "bill_unwritten"
META_ENDPOINT = "tweetform_endpoint"  # the endpoint key (rate-limit name) of the request
META_CREDENTIAL = "tweetform_credential"  # the alias of the credential that signed the attempt
META_QID = "tweetform_qid"  # the Redis queue's id of a request taken from it (tweetform.state.redis.queue)
META_LEASE = "tweetform_lease"  # the lease on a request taken from a queue (Redis: its token; JOBDIR: its row)
#: (queue id, lease) of the Redis-queued request a look-up near the end of its budget was split off from (cost/budget.py):
#: the part queued at once is a new request, queued only while that lease holds and never a first delivery
META_PART_OF = "tweetform_part_of"
#: how this worker got the request from the Redis queue (tweetform.state.redis.node.Delivery; never queued: the
#: queue takes it out of a request it pushes), handed to its pages (PageItem.delivery) by the spider
META_DELIVERY = "tweetform_delivery"
#: on a first page a page's callback yielded for a user the push claims (JobStore.claims_at_push): that page's
#: META_QID; the Redis queue pushes such first pages with the page's acknowledgement, all in one step, so
#: every user the page found is claimed before any page it queued can be fetched
META_FOUND_BY = "tweetform_found_by"
