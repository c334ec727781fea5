"""Distributed mode: many processes on many hosts share jobs through Redis (scrapy-redis).

Switched on by ``REDIS_URL``. Every Redis key is built in :mod:`.keys`.
"""
