"""Secrets never reach Redis, a log, the output, the stats or `scrapy status` — with real processes.

One short distributed crawl meets everything that makes requests go back out of
a worker: 5xx answers and truncated bodies (retries), 429s (requests put back to
wait for quota), an app-only credential whose bearer token is fetched from its
key and secret, user-context credentials, and an authenticated proxy (tinyproxy
with BasicAuth) — at LOG_LEVEL=DEBUG, with Redis behind a password. Everything
Redis receives is captured with ``MONITOR`` (its own connection, started before
the workers); the capture, the logs, the output files and ``scrapy status`` are
searched for every canary secret, plain, percent-encoded and base64 at each
alignment.

Then Redis over TLS (``rediss://``, a certificate the test makes with the
``openssl`` CLI) with a password: a worker, ``scrapy push`` and ``scrapy status``
work; a wrong password is one line without the password.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import redis
from conftest import ROOT
from crawling import bucket, demo_credentials
from test_proxies import TinyProxy, clients, network_equals_truth, via_names
from test_secrets import (
    CANARY_APP,
    CANARY_FETCH,
    CANARY_USER,
    PROXY_PASSWORD,
    PROXY_USER,
    REDIS_PASSWORD,
    canary_hits,
    canary_secrets,
)

from tweetform.testing.servers import RedisServer, SandboxProcess

FOLLOWING = "/2/users/:id/following"
#: the bearer token the sandbox issues for CANARY_FETCH's key and secret (tweetform is given only those)
FETCHED_BEARER = "AAAAAAAAAAAAAAAAAAAAACnryFetchedBearerW4q8Lm2Zx6Vb9Tn3Rk7Hp1Jd5Gs0Ys8Xc"


def all_secrets() -> list[str]:
    return [*canary_secrets(), FETCHED_BEARER, REDIS_PASSWORD]


class Monitor(threading.Thread):
    """Every command Redis receives (``MONITOR``), raw, on a connection of its own."""

    def __init__(self, port: int, password: str) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        for command in (["AUTH", password], ["MONITOR"]):
            self.sock.sendall(b"".join([f"*{len(command)}\r\n".encode(), *(f"${len(a)}\r\n{a}\r\n".encode() for a in command)]))
            assert self.sock.recv(64).startswith(b"+OK"), command[0]
        self.sock.settimeout(0.2)
        self.chunks: list[bytes] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                data = self.sock.recv(1 << 16)
            except socket.timeout:
                continue
            if not data:
                return
            self.chunks.append(data)

    def stop(self) -> bytes:
        self.stopping.set()
        self.join(5)
        self.sock.close()
        return b"".join(self.chunks)


STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def no_process_left_behind() -> Iterator[None]:
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def env_for(box: Any, redis_url: str, output: Path, credentials: list[dict], **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWEETFORM_", "REDIS_", "ROTATING_PROXY_"))}
    env.update({"TWEETFORM_API_BASE": box.base, "TWEETFORM_CREDENTIALS": json.dumps(credentials),
                "TWEETFORM_OUTPUT_DIR": str(output), "REDIS_URL": redis_url, "TWEETFORM_HEARTBEAT": "0.3",
                "TWEETFORM_HEARTBEAT_TTL": "1.5", "TWEETFORM_QUOTA_RESET_MARGIN": "0.1", "TWEETFORM_RETRY_BACKOFF": "0.05",
                "TWEETFORM_RETRY_BACKOFF_MAX": "0.2", "PYTHONWARNINGS": "error",
                "TWEETFORM_BUDGET_USD": "unlimited", **settings})
    return env


def scrapy(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scrapy", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def start_worker(env: dict[str, str], log: Path, *extra: str) -> subprocess.Popen:
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "scrapy", "worker", "--spiders", "friends",
                                 "-s", "TWEETFORM_EXIT_WHEN_IDLE=1", *extra], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    STARTED.append(proc)
    return proc


def wait_done(workers: list[subprocess.Popen], logs: list[Path], timeout: float = 180) -> list[str]:
    for w, log in zip(workers, logs):
        try:
            w.wait(timeout)
        except subprocess.TimeoutExpired:
            w.kill()
            w.wait()
            raise AssertionError(f"worker did not finish: {log.read_text()[-3000:]}")
        assert w.returncode == 0, log.read_text()[-3000:]
    return [log.read_text() for log in logs]


def wait_registered(r: redis.Redis, workers: list[subprocess.Popen], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        infos = [json.loads(v) for v in r.hvals("tweetform:workers")]
        if {w.pid for w in workers} <= {i["pid"] for i in infos}:
            return
        if any(w.poll() is not None for w in workers):
            raise AssertionError("a worker exited before registering")
        time.sleep(0.1)
    raise AssertionError("workers did not register")


def written(output: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(output.rglob("*")) if p.is_file())


def test_distributed_crawl_with_faults_429s_and_a_proxy_leaks_no_secret(tmp_path: Path):
    # the sandbox knows the canary credentials; CANARY_FETCH's token is what oauth2/token issues for its key
    sandbox_creds = tmp_path / "sandbox-credentials.json"
    sandbox_creds.write_text(json.dumps([CANARY_USER, CANARY_APP, {**CANARY_FETCH, "bearer_token": FETCHED_BEARER}]))
    box = SandboxProcess("--users", "3000", "--seed", "7", "--window", "1", "--limit", f"{FOLLOWING}=3",
                         "--error-rate", "0.25", "--truncate-rate", "0.15", "--credentials", str(sandbox_creds))
    server = RedisServer(password=REDIS_PASSWORD)
    proxy = TinyProxy("tf-proxy-secret", user=PROXY_USER, password=PROXY_PASSWORD).start()
    monitor = None
    try:
        seed = box.get("/_sandbox/examples")["ordinary"][0]
        output = tmp_path / "out"
        env = env_for(box, server.url, output, [CANARY_USER, CANARY_APP, CANARY_FETCH],
                      # a negative margin sends before a window has rolled over: real 429s, put back to wait
                      # 40 % of tries meet a fault: 20 retries keep a page failing all of them out of reach (0.4 ** 21 = 4e-9;
                      # with 10, 4e-5 a page, about one run of 500 lost a page and failed)
                      TWEETFORM_QUOTA_RESET_MARGIN="-0.5", RETRY_TIMES="20",
                      ROTATING_PROXY_LIST=proxy.url(), ROTATING_PROXY_BACKOFF_BASE="86400", ROTATING_PROXY_BACKOFF_CAP="86400")
        monitor = Monitor(server.port, REDIS_PASSWORD)
        monitor.start()
        logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
        debug = ("-s", "LOG_LEVEL=DEBUG", "-s", "CONCURRENT_REQUESTS=4")
        workers = [start_worker(env, log, *debug) for log in logs]
        wait_registered(redis.Redis.from_url(server.url), workers)
        pushed = scrapy(env, "push", "friends", "--user-id", str(seed), "--depth", "2", "--max-users", "20", "--api", "2",
                        "--job", "secrets", "-L", "DEBUG")
        assert pushed.returncode == 0, pushed.stderr[-2000:]
        texts = wait_done(workers, logs)
        status = scrapy(env, "status", "-L", "DEBUG")
        status_job = scrapy(env, "status", "--job", "secrets", "-L", "DEBUG")
        captured = monitor.stop()
        monitor = None

        # the crawl did what a user expects, through every path that sends a request back out
        network_equals_truth(box, output, seed, 2, 20)
        pages = sum(len(lines) for lines in bucket(output, "friend_ids").values())
        assert 10 <= pages <= 50, pages  # a short crawl
        counters = box.counters()
        print(f"pages {pages}, API requests {counters['requests']}, statuses {counters['statuses']}, faults {counters['faults']}, "
              f"MONITOR capture {len(captured)} bytes")
        assert counters["statuses"].get("429", 0) > 0, counters["statuses"]
        # every attempt — retried, put back after a 429, popped from Redis — was signed again, through the proxy's auth
        assert counters["statuses"].get("401", 0) == 0, counters["statuses"]
        assert counters["faults"].get("error", 0) > 0 and counters["faults"].get("truncate", 0) > 0, counters["faults"]
        seen = clients(box)
        assert {"canary-user", "canary-app", "canary-fetch"} <= set(seen)  # user, app and fetched-bearer lanes all used
        assert all(via_names(v) == {"tf-proxy-secret"} for v in seen.values())  # every request through the proxy
        log = "\n".join(texts)
        assert "fetched an app-only bearer token for credential 'canary-fetch'" in log
        assert "Retrying <GET" in log and "DEBUG: Crawled (200)" in log  # retries happened, DEBUG lines are there
        assert " is dead (" not in log and "proxy error 407" not in log
        assert b"pagination_token" in captured or b"following" in captured  # requests were queued in Redis
        assert status.returncode == 0 and status_job.returncode == 0, status.stderr + status_job.stderr

        # and no secret anywhere
        places = {
            "redis (MONITOR)": captured,
            "worker logs": log.encode(),
            "push output": (pushed.stdout + pushed.stderr).encode(),
            "status output": (status.stdout + status.stderr + status_job.stdout + status_job.stderr).encode(),
            "output files": written(output),
        }
        leaks = {where: canary_hits(data, all_secrets()) for where, data in places.items()}
        assert leaks == {where: [] for where in places}, leaks
    finally:
        if monitor is not None:
            monitor.stop()
        for w in STARTED:
            if w.poll() is None:
                w.kill()
        proxy.stop()
        server.stop()
        box.stop()


def test_redis_over_tls_with_a_password_workers_push_and_status_work(sandbox_factory, tmp_path: Path):
    box = sandbox_factory("--users", "3000", "--seed", "7", "--window", "1")
    server = RedisServer(password=REDIS_PASSWORD, tls=True)
    try:
        seed = box.get("/_sandbox/examples")["ordinary"][0]
        output = tmp_path / "out"
        env = env_for(box, server.url, output, demo_credentials("demo-user-1", "demo-app-1"))
        log = tmp_path / "worker.log"
        worker = start_worker(env, log)
        wait_registered(redis.Redis.from_url(server.url), [worker])
        pushed = scrapy(env, "push", "friends", "--user-id", str(seed), "--depth", "1", "--api", "2", "--job", "tls")
        assert pushed.returncode == 0, pushed.stderr[-2000:]
        texts = wait_done([worker], [log])
        network_equals_truth(box, output, seed, 1, 10_000)
        status = scrapy(env, "status", "--job", "tls")
        assert status.returncode == 0, status.stderr
        assert "tls" in status.stdout
        # plain TCP is refused: the server has no non-TLS port at all
        plain = server.url.replace("rediss://", "redis://").split("?")[0]
        with pytest.raises(redis.ConnectionError):
            redis.Redis.from_url(plain, socket_connect_timeout=2, socket_timeout=2).ping()
        # and the certificate is checked: without the URL's CA file the self-signed certificate is refused
        with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
            redis.Redis.from_url(server.url.split("?")[0], socket_connect_timeout=2, socket_timeout=2).ping()
        # a wrong password: one line, no password in it, non-zero exit
        wrong = "Wr0ng-" + REDIS_PASSWORD
        for command in (("status",), ("push", "friends", "--user-id", str(seed), "--job", "nope"), ("worker", "--spiders", "friends")):
            bad = scrapy({**env, "REDIS_URL": server.url_with_password(wrong)}, *command)
            shown = bad.stdout + bad.stderr
            assert bad.returncode != 0, shown
            assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
            assert "password" in bad.stderr.lower() and canary_hits(shown, [wrong, REDIS_PASSWORD]) == [], shown
        assert canary_hits("\n".join(texts) + pushed.stdout + pushed.stderr + status.stdout, [REDIS_PASSWORD]) == []
    finally:
        for w in STARTED:
            if w.poll() is None:
                w.kill()
        server.stop()
