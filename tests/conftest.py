"""Test harness: a real Redis server and real sandbox processes (tweetform.testing.servers).

* ``redis_server`` — one ``redis-server`` per test session on a free loopback
  port; every test starts and ends with it flushed (``redis_url`` fixture).
* ``sandbox`` / ``sandbox_factory`` — the API emulator as a subprocess
  listening on port 0 and printing its URL (Scrapy's tests/mockserver pattern).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from tweetform.testing.servers import RedisServer, SandboxProcess

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    redis_server.flush()
    yield redis_server.url
    redis_server.flush()


@pytest.fixture(scope="session")
def sandbox_factory() -> Iterator[Any]:
    """Start (once per session and option set) a sandbox with the given flags."""
    running: dict[tuple[str, ...], SandboxProcess] = {}

    def start(*args: str) -> SandboxProcess:
        key = tuple(args)
        if key not in running:
            running[key] = SandboxProcess(*args, cwd=ROOT)
        box = running[key]
        box.reset()
        return box

    yield start
    for box in running.values():
        box.stop()


#: the small world most tests share: 3,000 users, 1 s windows
SMALL_WORLD = ("--users", "3000", "--seed", "7", "--window", "1")


@pytest.fixture
def sandbox(sandbox_factory: Any) -> SandboxProcess:
    return sandbox_factory(*SMALL_WORLD)
