"""One dataset from many hosts: workers hand pages to Redis, ``scrapy collect`` writes them.

* :mod:`.pipeline` — the worker side (``TWEETFORM_COLLECT``): an outermost spider
  middleware (and, for items that bypass it, a pipeline) puts each page in its
  job's Redis stream before the callback acknowledges its request, with
  backpressure at ``TWEETFORM_COLLECT_MAX_BYTES``.
* :mod:`.collector` — ``scrapy collect``: reads the streams through a consumer
  group, writes with the bucket pipeline, fsyncs, then acknowledges.
* :mod:`.lock` — one collector at a time.
* :mod:`.stream` — the entry format, the Lua scripts (``lua/``) and
  :func:`~.stream.pages_waiting`, what job completion checks.
"""
