"""The one place a Redis client is made (scrapy-redis's factory, from ``REDIS_URL`` / ``REDIS_PARAMS``).

Every component of a crawler — scheduler, dupe filter, job store, quota book,
pipeline, worker node — shares one client (one connection pool) per crawler.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from scrapy.crawler import Crawler
from scrapy_redis.connection import get_redis_from_settings

from tweetform.crawler_state import state_of



def _counting(connection_class: type, counter: list[int], connects: list[int], run: list[str]) -> type:
    """The pool's connection class, counting round trips (one per command sent, one per pipeline) and the
    connections it opens (:func:`connects`); each new connection reads the server's run id (:func:`server_run`)."""

    class CountingConnection(connection_class):  # type: ignore[misc, valid-type]
        def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            counter[0] += 1
            super().send_packed_command(command, check_health)

        def connect_check_health(self, *args: Any, **kwargs: Any) -> None:
            opened = self._sock is None
            super().connect_check_health(*args, **kwargs)
            if opened and self._sock is not None:
                connects[0] += 1
                run[0] = self.server_run_id()

        def server_run_id(self) -> str:
            try:
                self.send_command("INFO", check_health=False)  # the default sections: server and memory among them
                info = self.read_response()
            except redis.ResponseError:  # INFO refused (an ACL, a managed Redis): not known
                return ""
            text = info.decode(errors="replace") if isinstance(info, bytes) else str(info)
            fields = dict(line.strip().split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))
            if fields.get("maxmemory_policy", "noeviction") != "noeviction":
                # a Redis that evicts keys under memory pressure (volatile-lru: managed services' default) may drop a
                # live worker's heartbeat key (it has a TTL): its requests are handed over while it holds them, and
                # nothing proves a first delivery (node.Lease): not known
                return ""
            return fields.get("run_id", "")

    return CountingConnection


# Redis not answering (down, restarting, loading its data): wait and retry. Any other
# RedisError is an answer (OOM, WRONGTYPE, a script error) and retrying will not help.
AWAY_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)


def redis_away(exc: BaseException) -> bool:
    """True when ``exc`` means Redis cannot be reached right now, not that it refused a command."""
    return isinstance(exc, AWAY_ERRORS)


def refusal(exc: BaseException) -> str:
    """One line for a Redis error answer (a ResponseError), the OOM one said plainly."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if text.startswith("OOM") or "used memory > 'maxmemory'" in text:  # a command's own, or a script's write's
        return "Redis maxmemory reached (OOM command not allowed): raise maxmemory or free memory"
    return f"Redis refused a command: {text[:200]}"


def from_settings(settings: Any) -> redis.Redis:
    """A new client with health checks, so a connection Redis dropped is noticed and redialled, and without
    redis-py's own retries (``REDIS_PARAMS``' ``retry`` is overridden): redis-py 8 sends a command or a whole pipeline
    again by itself (10 times by default) when the connection breaks after it was written, so a script that ran
    (billed ids, a pop) would run twice and the lost answer never be seen. A broken connection raises instead;
    the caller treats it as Redis away (the answer lost: the call may have run), and its next command dials anew."""
    client = get_redis_from_settings(settings)
    client.connection_pool.connection_kwargs.setdefault("health_check_interval", 10)
    client.set_retry(Retry(NoBackoff(), 0))
    return client


def for_crawler(crawler: Crawler) -> redis.Redis:
    """The crawler's shared client (kept in its CrawlerState)."""
    held = state_of(crawler)
    if held.redis is None:
        held.redis = from_settings(crawler.settings)
        pool = held.redis.connection_pool  # TLS or not, as the URL chose: counted, not replaced
        pool.tweetform_connects, pool.tweetform_run = [0], [""]
        pool.connection_class = _counting(pool.connection_class, held.redis_round_trips, pool.tweetform_connects,
                                          pool.tweetform_run)
    return held.redis


def connects(server: Any) -> int:
    """How many connections the crawler's client (:func:`for_crawler`) has opened so far (0 for another client).
    A worker's memory of what Redis said (claims, billed ids) holds only while this stays the same: a Redis that
    restarted (or a replica promoted) is reached through a new connection, and it may have come back with data
    older than what it answered before (writes after its last fsync or snapshot lost)."""
    return getattr(getattr(server, "connection_pool", None), "tweetform_connects", (0,))[0]


def server_run(server: Any) -> str:
    """The run id of the redis-server process the crawler's client last connected to ("" when not known: another
    client, INFO refused, or a ``maxmemory-policy`` that evicts keys: no pop is then a first delivery). It changes when Redis restarts or a replica takes over, whose data may be older than
    what the one before answered (the queue's pop reads it: ``lua/queue_pop.lua``)."""
    return getattr(getattr(server, "connection_pool", None), "tweetform_run", ("",))[0]


def current_run(server: Any) -> str:
    """The run id of the redis-server process ``server`` talks to: as its last connection read it (the crawler's client),
    else asked (INFO); "" when refused."""
    known = server_run(server)
    if known:
        return known
    try:
        return str(server.info("server").get("run_id", ""))
    except redis.ResponseError:
        return ""


class ConnectionWatch:
    """Tells a holder of what Redis said (claims, billed ids) when the crawler's client opened a new connection
    since it last asked (:func:`connects`): its memory may be older than Redis's data then, and is dropped."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.seen = 0

    def changed(self) -> bool:
        opened = connects(self.server)
        if opened == self.seen:
            return False
        self.seen = opened
        return True


def round_trips(crawler: Crawler) -> int:
    """Redis round trips this crawler's components made so far (stat ``tweetform/redis/round_trips``)."""
    return state_of(crawler).redis_round_trips[0]
