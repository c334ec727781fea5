"""The Redis backend of the state layer: many processes on many hosts share jobs (scrapy-redis).

* :mod:`.keys` — every Redis key; :mod:`.connection` — the one client factory;
  :mod:`.scripts` + ``lua/`` — every Lua script.
* :mod:`.scheduler`, :mod:`.queue`, :mod:`.dupefilter` — scrapy-redis's
  Scheduler, queue and RFPDupeFilter, extended with per-endpoint queues,
  in-flight tracking and per-job fingerprints.
* :mod:`.seen` — each job's claimed users, exact, in small listpack hashes (~20 bytes a user).
* :mod:`.jobs` — job messages and shared job state; :mod:`.quota` — shared quota;
  :mod:`.node` — heartbeat, reaping, taking jobs; :mod:`.control` — status/admin.
"""
