"""Real ``redis-server`` and sandbox processes on free loopback ports: the one launcher that
``tests/conftest.py`` and every ``bench/`` script use.

* ``RedisServer`` — a redis-server of its own (no persistence unless ``appendonly``), optionally
  with a password (written to its config file, never on its command line) and TLS only.
* ``SandboxProcess`` — ``python -m tweetform.sandbox --port 0 …`` (Scrapy's tests/mockserver
  pattern: the process binds port 0 and prints its URL), with helpers for its ``/_sandbox``
  endpoints.

Both bind 127.0.0.1 only, so parallel test workers and benches never share a server.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import redis

TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A loopback port nothing listened on a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_cpu(pid: int) -> float:
    """CPU seconds of a live process: the sum of its threads' on-CPU nanoseconds
    (/proc/<pid>/task/*/schedstat; clock ticks are 10 ms, too coarse for short phases), else user +
    system clock ticks from /proc/<pid>/stat; NaN once it is gone."""
    try:
        total = 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):
        pass
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / TICK


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, wait: float = 10) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class RedisServer:
    """A ``redis-server`` on a free loopback port, its files in a temporary directory."""

    def __init__(self, *, appendonly: bool = False, password: str | None = None, tls: bool = False) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise RuntimeError("redis-server is not on PATH: run `make test` (it installs Redis) or apt-get install redis-server")
        self.dir = Path(tempfile.mkdtemp(prefix="tweetform-redis-"))
        self.appendonly = appendonly
        self.password = password
        self.tls = tls
        self.cert: Path | None = None
        self._client: redis.Redis | None = None
        if tls:
            self._make_certificate()
        self.port = 0
        # A port picked free can be taken by another process before redis-server binds it (parallel
        # test workers pick ports too): a server that exits at start gets a new port, twice at most.
        for attempt in range(3):
            self.port = free_port()
            self._write_config()
            try:
                self.start()
                return
            except _ExitedAtStart:
                if attempt == 2:
                    self.stop()
                    raise RuntimeError(f"redis-server did not start: {self.output[-1500:]}") from None

    def _make_certificate(self) -> None:
        self.cert = self.dir / "cert.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                        "-keyout", str(self.dir / "key.pem"), "-out", str(self.cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)

    def _write_config(self) -> None:
        lines = ["bind 127.0.0.1", "protected-mode yes", 'save ""', f"dir {self.dir}", "daemonize no",
                 f"appendonly {'yes' if self.appendonly else 'no'}", "appendfsync always", f"logfile {self.dir / 'redis.log'}"]
        if self.password is not None:
            lines.append(f"requirepass {self.password}")
        if self.tls:
            lines += ["port 0", f"tls-port {self.port}", f"tls-cert-file {self.cert}", f"tls-key-file {self.dir / 'key.pem'}",
                      f"tls-ca-cert-file {self.cert}", "tls-auth-clients no"]
        else:
            lines.append(f"port {self.port}")
        (self.dir / "redis.conf").write_text("\n".join(lines) + "\n")

    @property
    def output(self) -> str:
        log = self.dir / "redis.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def start(self) -> None:
        """Start redis-server (again, after ``stop_process``) and wait until it answers."""
        self.proc = subprocess.Popen([self.binary, str(self.dir / "redis.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = self.connect(socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if self.proc.poll() is not None:
                        raise _ExitedAtStart() from None
                    if time.monotonic() > deadline:
                        _stop(self.proc)
                        raise RuntimeError(f"redis-server did not answer within 10 s: {self.output[-1500:]}") from None
                    time.sleep(0.05)
        finally:
            client.close()

    @property
    def url(self) -> str:
        """``redis://`` (``rediss://`` with TLS) URL of this server, with its password if it has one."""
        return self.url_with_password(self.password)

    def url_with_password(self, secret: str | None) -> str:
        auth = f":{quote(secret, safe='')}@" if secret is not None else ""
        if self.tls:
            return (f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_ca_certs={quote(str(self.cert), safe='')}"
                    "&ssl_cert_reqs=required")
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def connect(self, **kwargs: Any) -> redis.Redis:
        """A new redis-py client of this server (the caller closes it)."""
        return redis.Redis.from_url(self.url, **kwargs)

    @property
    def client(self) -> redis.Redis:
        """This launcher's own client (closed by ``stop``)."""
        if self._client is None:
            self._client = self.connect()
        return self._client

    def flush(self) -> None:
        """Empty every database and zero the ``INFO`` counters."""
        self.client.flushall()
        self.client.config_resetstat()

    def restart(self, down_for: float) -> None:
        """Stop the server (its AOF kept), stay down a while, start it again on the same port."""
        self.stop_process()
        time.sleep(down_for)
        self.start()

    def stop_process(self) -> None:
        _stop(self.proc)

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
        if hasattr(self, "proc"):
            _stop(self.proc, wait=5)
        shutil.rmtree(self.dir, ignore_errors=True)


class _ExitedAtStart(Exception):
    pass


class SandboxProcess:
    """A running ``python -m tweetform.sandbox`` (or ``cmd``, which must print the same
    'listening on' line first) and helpers to read its test endpoints."""

    def __init__(self, *args: str, python: str = sys.executable, cmd: list[str] | None = None,
                 cwd: str | Path | None = None, new_session: bool = False) -> None:
        self.args = ["--port", "0", *args]
        self.stderr: IO[bytes] = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd or [python, "-m", "tweetform.sandbox", *self.args], cwd=cwd, text=True,
                                     stdout=subprocess.PIPE, stderr=self.stderr, start_new_session=new_session)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening on " not in line:
            self.stop()
            raise RuntimeError(f"sandbox did not start: {line!r} {self.errors()[-2000:]}")
        self.base = line.strip().rsplit(" ", 1)[-1]
        # keep draining stdout so the sandbox never blocks on a full pipe
        self._drain = threading.Thread(target=self.proc.stdout.read, daemon=True)
        self._drain.start()
        self.initial_faults = self.get("/_sandbox/faults")  # as its flags set them (e.g. --latency)

    @property
    def command(self) -> str:
        return "python -m tweetform.sandbox " + shlex.join(self.args)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu(self) -> float:
        return process_cpu(self.proc.pid)

    def errors(self) -> str:
        """What the sandbox wrote to stderr so far."""
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def url(self, path: str) -> str:
        return self.base + path

    def get(self, path: str, timeout: float = 120) -> Any:
        with urllib.request.urlopen(self.url(path), timeout=timeout) as resp:
            return json.loads(resp.read())

    def post(self, path: str, payload: Any = None, timeout: float = 60) -> Any:
        data = json.dumps(payload or {}).encode()
        req = urllib.request.Request(self.url(path), data=data, method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())

    def truth(self, what: str, uid: int) -> list[int]:
        return self.get(f"/_sandbox/truth/{what}/{uid}")["ids"]

    def counters(self) -> dict[str, Any]:
        return self.get("/_sandbox/counters")

    def rows(self, endpoint: str) -> list[dict[str, Any]]:
        """The per-credential rate-limit counters of one endpoint (e.g. ``/2/users/:id/following``)."""
        return [r for r in self.counters()["limits"] if r["endpoint"] == endpoint]

    def served(self, endpoint: str) -> int:
        return sum(r["served"] for r in self.rows(endpoint))

    def set_faults(self, **rates: float) -> None:
        """Change some fault settings of the running sandbox (e.g. ``latency=0`` once a test no longer
        needs a slow crawl); ``reset`` puts its flags' values back."""
        self.post("/_sandbox/faults", rates)

    def reset(self) -> None:
        """Counters zeroed and faults back to the sandbox's flags, so each run starts clean."""
        self.post("/_sandbox/counters/reset")
        self.post("/_sandbox/faults", self.initial_faults)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        _stop(self.proc, sig, wait=20)
        drain = getattr(self, "_drain", None)
        if drain is not None:
            drain.join(5)  # the pipe is at its end once the process is gone
        if self.proc.stdout and not (drain and drain.is_alive()):
            self.proc.stdout.close()
        self.stderr.close()
