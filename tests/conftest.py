"""Test harness: a real Redis server and real sandbox processes.

* ``redis_server`` — one ``redis-server`` per test session on a free loopback
  port; every test starts and ends with it flushed (``redis_url`` fixture).
* ``sandbox`` / ``sandbox_factory`` — the API emulator as a subprocess
  listening on port 0 and printing its URL (Scrapy's tests/mockserver pattern).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, appendonly: bool = False) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise RuntimeError("redis-server is not on PATH: run `make test` (it installs Redis) or apt-get install redis-server")
        self.dir = tempfile.mkdtemp(prefix="tweetform-redis-")
        self.port = free_port()
        self.appendonly = appendonly
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "always",
             "--dir", self.dir, "--daemonize", "no", "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def flush(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(b"FLUSHALL\r\n")
            s.recv(16)

    def restart(self, down_for: float) -> None:
        """Stop the server (its AOF kept), stay down a while, start it again on the same port."""
        self.proc.terminate()
        self.proc.wait(10)
        time.sleep(down_for)
        self.start()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class SandboxProcess:
    """A running ``python -m tweetform.sandbox`` and helpers to read its test endpoints."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tweetform.sandbox", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, text=True,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if "listening on " not in line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"sandbox did not start: {line!r} {err[-2000:]}")
        self.base = line.strip().rsplit(" ", 1)[-1]
        self.initial_faults = self.get("/_sandbox/faults")  # as its flags set them (e.g. --latency)

    def url(self, path: str) -> str:
        return self.base + path

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url(path), timeout=30) as resp:
            return json.loads(resp.read())

    def post(self, path: str, payload: Any = None) -> Any:
        data = json.dumps(payload or {}).encode()
        req = urllib.request.Request(self.url(path), data=data, method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def truth(self, what: str, uid: int) -> list[int]:
        return self.get(f"/_sandbox/truth/{what}/{uid}")["ids"]

    def counters(self) -> dict[str, Any]:
        return self.get("/_sandbox/counters")

    def reset(self) -> None:
        """Counters zeroed and faults back to the sandbox's flags, so each test starts clean."""
        self.post("/_sandbox/counters/reset")
        self.post("/_sandbox/faults", self.initial_faults)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()


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
            running[key] = SandboxProcess(*args)
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
