"""The one place a Redis client is made (scrapy-redis's factory, from ``REDIS_URL`` / ``REDIS_PARAMS``).

Every component of a crawler — scheduler, dupe filter, job store, quota book,
pipeline, worker node — shares one client (one connection pool) per crawler.
"""

from __future__ import annotations

import weakref
from typing import Any

import redis
from scrapy.crawler import Crawler
from scrapy_redis.connection import get_redis_from_settings

_clients: "weakref.WeakKeyDictionary[Crawler, redis.Redis]" = weakref.WeakKeyDictionary()


def from_settings(settings: Any) -> redis.Redis:
    """A new client with health checks, so a connection Redis dropped is noticed and redialled."""
    client = get_redis_from_settings(settings)
    client.connection_pool.connection_kwargs.setdefault("health_check_interval", 10)
    return client


def for_crawler(crawler: Crawler) -> redis.Redis:
    """The crawler's shared client."""
    client = _clients.get(crawler)
    if client is None:
        client = _clients[crawler] = from_settings(crawler.settings)
    return client
