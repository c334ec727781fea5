"""Proxies: lists, the API-aware ban policy, pinning, `scrapy proxies check` — with real proxy processes.

Real processes on loopback: Debian's tinyproxy (one process per proxy, each with
its own config file and ``ViaProxyName``, so the sandbox's per-credential
``clients`` counter shows which proxy a request came through), a small Python
server that accepts connections and closes them at once (a proxy that drops
connections), and a free port nobody listens on (a dead proxy).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import ROOT
from crawling import FULL_LOG, bucket, demo_credentials, errors_of, ids_of, run_crawl, unit_crawler
from scrapy import Request, Spider
from scrapy.exceptions import (
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure
from twisted.web.client import ResponseFailed, ResponseNeverReceived

from tweetform import exitcodes
from tweetform.api.endpoints import ENDPOINTS
from tweetform.credentials import parse_credentials
from tweetform.proxies import config, policy
from tweetform.proxies.middlewares import BanDetectionMiddleware, RotatingProxyMiddleware
from tweetform import state
from tweetform.testing.servers import free_port

WORLD = ("--users", "3000", "--seed", "7", "--window", "1")
PASSWORD = "pr0xy-Canary-9f3b"  # tinyproxy's BasicAuth password for the authenticated proxy
# fast retries; a dead proxy stays dead for the whole test (the back-off is a random 0..base seconds)
FAST_RETRY = {**FULL_LOG, "TWEETFORM_RETRY_BACKOFF": "0.05", "TWEETFORM_RETRY_BACKOFF_MAX": "0.2", "RETRY_TIMES": "8",
              "ROTATING_PROXY_BACKOFF_BASE": "86400", "ROTATING_PROXY_BACKOFF_CAP": "86400"}
FOLLOWING = "/2/users/:id/following"
ENDPOINT = ENDPOINTS[FOLLOWING]


# --- real proxy processes ---------------------------------------------------------------------

def tinyproxy_binary() -> str:
    found = shutil.which("tinyproxy") or next((p for p in ("/usr/bin/tinyproxy", "/usr/sbin/tinyproxy") if Path(p).is_file()), None)
    if found is None:  # fail loudly, never skip: CI installs it (make test / .ci/run)
        raise RuntimeError("tinyproxy is not installed: run `make test` (it installs Debian's tinyproxy) or apt-get install tinyproxy")
    return found


def wait_listening(port: int, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port}")


class TinyProxy:
    """One tinyproxy process on a loopback port, with its own config file (never the system service)."""

    def __init__(self, name: str, port: int | None = None, user: str = "", password: str = "") -> None:
        self.name = name
        self.port = port or free_port()
        self.user, self.password = user, password
        self.dir = Path(tempfile.mkdtemp(prefix=f"tweetform-{name}-"))
        lines = [f"Port {self.port}", "Listen 127.0.0.1", "Timeout 30", "MaxClients 200", "Allow 127.0.0.1",
                 f'ViaProxyName "{name}"', "LogLevel Critical"]
        if user:
            lines.append(f"BasicAuth {user} {password}")
        self.conf = self.dir / "tinyproxy.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> "TinyProxy":
        self.proc = subprocess.Popen([tinyproxy_binary(), "-d", "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_listening(self.port, self.proc, f"tinyproxy {self.name}")
        return self

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, password: str | None = None) -> str:
        if not self.user:
            return f"http://{self.address}"
        return f"http://{self.user}:{self.password if password is None else password}@{self.address}"

    def via(self) -> str:
        """The Via header tinyproxy adds, as the sandbox records it."""
        return f"1.1 {self.name} (tinyproxy/"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


DROPPER = r"""
import socket, sys, time
count_file, lifetime = sys.argv[1], float(sys.argv[2])
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(128)
srv.settimeout(0.2)
print(srv.getsockname()[1], flush=True)
count, end = 0, time.monotonic() + lifetime
while time.monotonic() < end:
    try:
        conn, _ = srv.accept()
    except socket.timeout:
        continue
    conn.close()  # accept, then drop: no answer ever
    count += 1
    with open(count_file, "w") as f:
        f.write(str(count))
"""


class Dropper:
    """A proxy that accepts every connection and closes it at once (a real process; it stops by itself)."""

    def __init__(self, lifetime: float = 300) -> None:
        self.count_file = Path(tempfile.mkdtemp(prefix="tweetform-dropper-")) / "count"
        self.proc = subprocess.Popen([sys.executable, "-c", DROPPER, str(self.count_file), str(lifetime)],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        self.address = f"127.0.0.1:{self.port}"

    def connections(self) -> int:
        try:
            return int(self.count_file.read_text() or 0)
        except FileNotFoundError:
            return 0

    def reset(self) -> None:
        self.count_file.unlink(missing_ok=True)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()
        shutil.rmtree(self.count_file.parent, ignore_errors=True)


class Proxies:
    def __init__(self) -> None:
        self.a = TinyProxy("tf-proxy-a").start()
        self.b = TinyProxy("tf-proxy-b").start()
        self.auth = TinyProxy("tf-proxy-auth", user="lab", password=PASSWORD).start()
        self.dropper = Dropper()
        self.dead = f"127.0.0.1:{free_port()}"  # nothing listens here

    def stop(self) -> None:
        for p in (self.a, self.b, self.auth, self.dropper):
            p.stop()


@pytest.fixture(scope="module")
def proxies() -> Iterator[Proxies]:
    running = Proxies()
    yield running
    running.stop()


# --- helpers ----------------------------------------------------------------------------------

def stats_of(stderr: str) -> dict[str, Any]:
    """The numeric entries of Scrapy's final stats dump."""
    assert "Dumping Scrapy stats" in stderr  # a crawl run with FULL_LOG
    return {k: float(v) for k, v in re.findall(r"'([^']+)': (-?\d+(?:\.\d+)?)[,}]", stderr)}


def proxies_marked_dead(stderr: str) -> dict[str, int]:
    return {k.split("/", 3)[3]: int(v) for k, v in stats_of(stderr).items() if k.startswith("tweetform/proxies/dead/")}


def clients(box: Any) -> dict[str, dict[str, int]]:
    return box.counters()["clients"]


def via_names(seen: dict[str, int]) -> set[str]:
    """Proxy names (ViaProxyName) in a credential's clients entry; "" for a direct request."""
    names = set()
    for where in seen:
        via = where.split("|", 1)[1]
        names.add(via.split()[1] if via else "")
    return names


def network_equals_truth(box: Any, output: Path, seed: int, depth: int, max_users: int) -> None:
    expected = box.get(f"/_sandbox/truth/reachable?seeds={seed}&depth={depth}&direction=friends&max_users={max_users}")["ids"]
    pages = bucket(output, "friend_ids")
    protected = {k for k, v in errors_of(output).items() if v == "protected"}
    assert set(pages) | protected == {str(u) for u in expected}
    for key, lines in pages.items():
        assert ids_of(lines) == box.truth("following", int(key))
        assert len({line["__tweetform"]["page_id"] for line in lines}) == len(lines)
    assert "failed" not in errors_of(output).values()


def all_written(output: Path) -> str:
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in output.rglob("*") if p.is_file())


def start_crawl(box: Any, spider: str, output: Path, *, credentials: list[dict], settings: dict[str, str],
                **args: Any) -> subprocess.Popen:
    """Like crawling.run_crawl, but running: the test reacts to the crawl's log as it goes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWEETFORM_", "REDIS_", "ROTATING_PROXY_"))}
    env.update({"TWEETFORM_API_BASE": box.base, "TWEETFORM_CREDENTIALS": json.dumps(credentials),
                "TWEETFORM_OUTPUT_DIR": str(output), "PYTHONWARNINGS": "error", "TWEETFORM_QUOTA_RESET_MARGIN": "0.1",
                "TWEETFORM_BUDGET_USD": "unlimited"})
    cmd = [sys.executable, "-m", "scrapy", "crawl", spider, "-L", "INFO"]
    for name, value in args.items():
        cmd += ["-a", f"{name}={value}"]
    for name, value in settings.items():
        cmd += ["-s", f"{name}={value}"]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def check_command(box: Any, proxy_list: list[str], *extra: str, credentials: list[dict] | None = None,
                  settings: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWEETFORM_", "REDIS_", "ROTATING_PROXY_"))}
    env.update({"TWEETFORM_API_BASE": box.base, "PYTHONWARNINGS": "error",
                "TWEETFORM_CREDENTIALS": json.dumps(credentials if credentials is not None else demo_credentials("demo-user-1")),
                "ROTATING_PROXY_LIST": json.dumps(proxy_list), **(settings or {})})
    return subprocess.run([sys.executable, "-m", "scrapy", "proxies", "check", "--timeout", "3", *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


# --- configuration (no processes) -------------------------------------------------------------

def test_proxy_sources_both_proxy_json_shapes_and_passwords_hidden(tmp_path: Path):
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"proxies": ["58.20.127.100:3128", "http://u:secret@10.0.0.1:8080"]}))
    new = tmp_path / "new.json"
    new.write_text(json.dumps({"proxies": [{"66.35.68.146:8089": "http"}, {"69.197.132.80:7808": "https"}]}))
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps([{"198.56.208.37:8089": "http"}]))
    listed = tmp_path / "list.txt"
    listed.write_text("# lab proxies\n10.0.0.2:3128\n\nhttp://10.0.0.3:3128\n")
    assert config.load_proxy_list({"TWEETFORM_PROXY_FILE": str(old)}) == ["http://58.20.127.100:3128", "http://u:secret@10.0.0.1:8080"]
    assert config.load_proxy_list({"TWEETFORM_PROXY_FILE": str(new)}) == ["http://66.35.68.146:8089", "https://69.197.132.80:7808"]
    assert config.load_proxy_list({"TWEETFORM_PROXY_FILE": str(bare)}) == ["http://198.56.208.37:8089"]
    merged = config.load_proxy_list({"ROTATING_PROXY_LIST": "10.0.0.2:3128,10.0.0.9:1", "ROTATING_PROXY_LIST_PATH": str(listed),
                                     "TWEETFORM_PROXY_FILE": str(old)})
    assert merged == ["http://10.0.0.2:3128", "http://10.0.0.9:1", "http://10.0.0.3:3128", "http://58.20.127.100:3128",
                      "http://u:secret@10.0.0.1:8080"]
    assert config.redact("http://u:secret@10.0.0.1:8080") == "http://u:***@10.0.0.1:8080"
    assert config.redact("u:secret@10.0.0.1:8080") == "u:***@10.0.0.1:8080"
    assert config.redact("http://10.0.0.1:8080") == "http://10.0.0.1:8080"
    for bad in ("http://u:secret@10.0.0.1", "socks5://10.0.0.1:1080", "http://u:secret@host:port", ""):
        with pytest.raises(config.ProxyConfigError) as err:
            config.normalize(bad, "ROTATING_PROXY_LIST")
        assert "secret" not in str(err.value)
    with pytest.raises(config.ProxyConfigError, match="not JSON"):
        (tmp_path / "broken.json").write_text("{")
        config.load_proxy_list({"TWEETFORM_PROXY_FILE": str(tmp_path / "broken.json")})


def test_pins_from_entries_and_setting_extend_the_list():
    creds = parse_credentials([
        {"alias": "a", "bearer_token": "t1", "proxy": "10.0.0.1:1"},
        {"alias": "b", "bearer_token": "t2", "proxies": ["10.0.0.2:2", "http://u:pw@10.0.0.3:3"]},
        {"alias": "c", "bearer_token": "t3"},
    ])
    plan = config.plan({"ROTATING_PROXY_LIST": ["10.0.0.1:1", "10.0.0.3:3"],
                        "TWEETFORM_CREDENTIAL_PROXIES": json.dumps({"c": "10.0.0.1:1"})}, creds)
    # pinned proxies missing from the list join it; a pin's password fills in the listed proxy's
    assert plan.proxies == ["http://10.0.0.1:1", "http://u:pw@10.0.0.3:3", "http://10.0.0.2:2"]
    assert plan.pins == {"a": {"10.0.0.1:1"}, "b": {"10.0.0.2:2", "10.0.0.3:3"}, "c": {"10.0.0.1:1"}}
    assert plan.credentials_for("http://10.0.0.1:1", ["a", "b", "c", "d"]) == ["a", "c", "d"]
    assert plan.allowed("d") is None
    with pytest.raises(config.ProxyConfigError, match="no credential with alias 'zz'"):
        config.plan({"TWEETFORM_CREDENTIAL_PROXIES": {"zz": "10.0.0.1:1"}}, creds)


# --- the ban policy -----------------------------------------------------------------------------

API_JSON = {"Content-Type": "application/json;charset=utf-8"}
API_LIMITS = {"x-rate-limit-limit": "15", "x-rate-limit-remaining": "0", "x-rate-limit-reset": "1700000000"}
TINYPROXY_HTML = {"Server": "tinyproxy/1.11.1", "Content-Type": "text/html"}


@pytest.mark.parametrize("status,headers,ban", [
    (200, API_JSON, False),
    (429, {**API_JSON, **API_LIMITS}, False),
    (503, {**API_JSON, **API_LIMITS}, False),
    (500, API_JSON, False),
    (401, API_JSON, False),
    (404, API_JSON, False),
    (502, API_LIMITS, False),  # the API's own 502: its headers say so
    (407, TINYPROXY_HTML, True),
    (401, TINYPROXY_HTML, True),  # tinyproxy's answer to a wrong password
    (500, TINYPROXY_HTML, True),  # tinyproxy's "Unable to connect"
    (502, {"Content-Type": "text/html"}, True),
    (503, {}, True),
])
def test_api_answers_are_never_bans_proxy_errors_are(status: int, headers: dict, ban: bool):
    assert policy.response_is_ban(status, headers) is ban


def test_failed_connections_are_bans_cut_bodies_are_not():
    never = DownloadFailedError("x")
    never.__cause__ = ResponseNeverReceived([Failure(ConnectionDone())])
    cut = DownloadFailedError("x")
    cut.__cause__ = ResponseFailed([Failure(ConnectionDone())])
    assert policy.exception_is_ban(DownloadConnectionRefusedError("refused")) is True
    assert policy.exception_is_ban(DownloadTimeoutError("slow")) is True
    assert policy.exception_is_ban(ConnectionResetError()) is True
    assert policy.exception_is_ban(never) is True
    assert policy.exception_is_ban(cut) is None
    assert policy.exception_is_ban(ResponseDataLossError()) is None
    assert policy.exception_is_ban(IgnoreRequest()) is None


def test_pinned_lane_gets_only_its_proxies_and_sits_out_when_they_die():
    creds = demo_credentials("demo-user-1", "demo-user-2")
    crawler = unit_crawler(Spider, {"TWEETFORM_CREDENTIALS": json.dumps(creds), "ROTATING_PROXY_LIST": ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"],
                                   "TWEETFORM_CREDENTIAL_PROXIES": {"demo-user-1": ["127.0.0.1:1", "127.0.0.1:2"]}})
    mw = RotatingProxyMiddleware.from_crawler(crawler)

    def request(alias: str) -> Request:
        return Request("http://api.test/2/users/12/following", meta={"tweetform_endpoint": FOLLOWING, "tweetform_lane": (alias, "user", "")})

    chosen = set()
    for _ in range(60):
        r = request("demo-user-1")
        assert mw.process_request(r) is None
        chosen.add(r.meta["proxy"])
    assert chosen == {"http://127.0.0.1:1", "http://127.0.0.1:2"}
    mw.proxies.mark_dead("http://127.0.0.1:1")
    mw.proxies.mark_dead("http://127.0.0.1:2")
    back = mw.process_request(request("demo-user-1"))
    assert isinstance(back, Request) and "tweetform_lane" not in back.meta and "proxy" not in back.meta
    assert "demo-user-1" in mw.pool.held
    assert [lane.alias for lane in mw.pool.lanes(ENDPOINT)] == ["demo-user-2"]  # the scheduler gives it no work
    other = request("demo-user-2")
    assert mw.process_request(other) is None and other.meta["proxy"] == "http://127.0.0.1:3"  # unpinned: any live one
    mw.proxies.reanimate(_time=time.time() + 10_000)  # back-off over: tried again
    mw.update_holds()
    assert "demo-user-1" not in mw.pool.held


def test_refused_connection_gives_quota_back_and_bans_the_proxy():
    crawler = unit_crawler(Spider, {"TWEETFORM_CREDENTIALS": json.dumps(demo_credentials("demo-user-1")),
                                   "ROTATING_PROXY_LIST": ["127.0.0.1:1"]})
    ban = BanDetectionMiddleware.from_crawler(crawler)
    book = state.book(crawler)
    reserved = book.reserve(ENDPOINT)
    assert reserved is not None and book.keys[(reserved.lane, FOLLOWING)].in_flight == 1

    def attempt() -> Request:
        return Request("http://api.test/2/users/12/following", meta={
            "tweetform_endpoint": FOLLOWING, "tweetform_lane": ("demo-user-1", "user", ""), "_rotating_proxy": True})

    refused = attempt()
    ban.process_exception(refused, DownloadConnectionRefusedError("refused"))
    assert refused.meta["_ban"] is True and "tweetform_lane" not in refused.meta  # the API never saw it
    assert book.keys[(reserved.lane, FOLLOWING)].in_flight == 0
    timed_out = attempt()
    ban.process_exception(timed_out, DownloadTimeoutError("slow"))
    assert timed_out.meta["_ban"] is True and "tweetform_lane" in timed_out.meta  # it may have: ApiErrorMiddleware decides


# --- crawls through real proxies ---------------------------------------------------------------

def test_dead_and_dropping_proxies_are_skipped_output_equals_truth(sandbox_factory, proxies: Proxies, tmp_path: Path):
    box = sandbox_factory(*WORLD)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    proxies.dropper.reset()
    proxy_list = [proxies.a.address, proxies.auth.url(), proxies.dead, proxies.dropper.address]
    result = run_crawl(box, "friends", tmp_path, user_id=seed, depth=3, max_users=60, api="2",
                       credentials=demo_credentials("demo-user-1", "demo-user-2"),
                       settings={"ROTATING_PROXY_LIST": json.dumps(proxy_list), **FAST_RETRY})
    assert result.returncode == 0, result.stderr[-3000:]
    network_equals_truth(box, tmp_path, seed, 3, 60)
    # the dead proxy and the dropping one were each marked dead once, and skipped from then on
    assert proxies_marked_dead(result.stderr) == {proxies.dead: 1, proxies.dropper.address: 1}
    assert f"proxy http://{proxies.dead} is dead (DownloadConnectionRefusedError)" in result.stderr
    assert f"proxy http://{proxies.dropper.address} is dead (ResponseNeverReceived" in result.stderr
    served = clients(box)
    total = sum(sum(seen.values()) for seen in served.values())
    assert total >= 60 and 1 <= proxies.dropper.connections() <= 20
    # everything the API saw came through the two healthy proxies
    assert set().union(*(via_names(seen) for seen in served.values())) == {"tf-proxy-a", "tf-proxy-auth"}
    # the authenticated proxy's password is nowhere: not in the log, not in the output
    assert PASSWORD not in result.stderr + result.stdout and PASSWORD not in all_written(tmp_path)
    assert "http://lab:***@" in result.stderr


def test_api_429s_and_503s_do_not_kill_a_healthy_proxy(sandbox_factory, proxies: Proxies, tmp_path: Path):
    box = sandbox_factory(*WORLD, "--limit", f"{FOLLOWING}=6")
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    box.post("/_sandbox/faults", {"error": 0.2})
    proxy_file = tmp_path / "proxy.json"  # tweetf0rm's later proxy.json shape
    proxy_file.write_text(json.dumps({"proxies": [{proxies.b.address: "http"}]}))
    out = tmp_path / "out"
    # a negative reset margin makes the quota book send before the window has rolled over: real 429s
    result = run_crawl(box, "friends", out, user_id=seed, depth=2, max_users=15, api="2",
                       credentials=demo_credentials("demo-user-1"),
                       settings={"TWEETFORM_PROXY_FILE": str(proxy_file), "TWEETFORM_QUOTA_RESET_MARGIN": "-0.5", **FAST_RETRY})
    assert result.returncode == 0, result.stderr[-3000:]
    network_equals_truth(box, out, seed, 2, 15)
    statuses = box.counters()["statuses"]
    assert statuses.get("429", 0) > 0 and statuses.get("503", 0) + statuses.get("500", 0) > 0
    assert proxies_marked_dead(result.stderr) == {}
    assert " is dead (" not in result.stderr
    assert stats_of(result.stderr).get("proxies/dead", 0) == 0
    assert via_names(clients(box)["demo-user-1"]) == {"tf-proxy-b"}


def test_pinned_credentials_only_ever_use_their_proxies(sandbox_factory, proxies: Proxies, tmp_path: Path):
    # 5 requests per window and credential: the crawl needs all three credentials
    box = sandbox_factory(*WORLD, "--limit", f"{FOLLOWING}=5")
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    creds = demo_credentials("demo-user-1", "demo-user-2", "demo-user-3")
    creds[1]["proxies"] = [proxies.b.address, proxies.dead]  # in the credential entry
    pins = {"demo-user-1": proxies.a.address}  # and in the setting
    result = run_crawl(box, "friends", tmp_path, user_id=seed, depth=2, max_users=30, api="2", credentials=creds,
                       settings={"ROTATING_PROXY_LIST": proxies.auth.url(), "TWEETFORM_CREDENTIAL_PROXIES": json.dumps(pins),
                                 **FAST_RETRY})
    assert result.returncode == 0, result.stderr[-3000:]
    network_equals_truth(box, tmp_path, seed, 2, 30)
    served = clients(box)
    assert via_names(served["demo-user-1"]) == {"tf-proxy-a"}
    assert via_names(served["demo-user-2"]) == {"tf-proxy-b"}
    assert "" not in via_names(served["demo-user-3"])  # unpinned: any proxy, never direct
    assert all(sum(served[a].values()) >= 1 for a in ("demo-user-1", "demo-user-2", "demo-user-3"))
    assert proxies_marked_dead(result.stderr) in ({}, {proxies.dead: 1})  # if it was drawn, it died once


def test_dead_pinned_proxy_takes_out_only_its_credential_until_it_recovers(sandbox_factory, proxies: Proxies, tmp_path: Path):
    box = sandbox_factory(*WORLD)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    late = TinyProxy("tf-proxy-late")  # its port is known; nothing listens there until the crawl has found it dead
    settings = {**FAST_RETRY, "ROTATING_PROXY_LIST": proxies.a.address, "ROTATING_PROXY_BACKOFF_BASE": "1",
                "ROTATING_PROXY_BACKOFF_CAP": "2", "TWEETFORM_CREDENTIAL_PROXIES": json.dumps({"demo-user-1": late.address})}
    crawl = start_crawl(box, "friends", tmp_path, credentials=demo_credentials("demo-user-1"), settings=settings,
                        user_id=seed, depth=2, max_users=15, api="2")
    log: list[str] = []
    try:
        assert crawl.stderr is not None
        for line in crawl.stderr:
            log.append(line)
            if "credential 'demo-user-1' sits out" in line and late.proc is None:
                late.start()
        crawl.wait(120)
    finally:
        if crawl.poll() is None:
            crawl.kill()
            crawl.wait()
        if crawl.stderr is not None:
            crawl.stderr.close()
        late.stop()
    stderr = "".join(log)
    assert crawl.returncode == 0, stderr[-3000:]
    network_equals_truth(box, tmp_path, seed, 2, 15)
    assert "credential 'demo-user-1' sits out: every proxy it is pinned to is dead" in stderr
    assert "credential 'demo-user-1' back in rotation" in stderr
    assert f"proxy http://{late.address} works again" in stderr
    # it waited for its own proxy: never sent through the live unpinned one, never direct
    assert via_names(clients(box)["demo-user-1"]) == {"tf-proxy-late"}


def test_check_at_start_keeps_only_working_proxies(sandbox_factory, proxies: Proxies, tmp_path: Path):
    box = sandbox_factory(*WORLD)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    result = run_crawl(box, "friends", tmp_path, user_id=seed, api="2", credentials=demo_credentials("demo-user-1"),
                       settings={"ROTATING_PROXY_LIST": json.dumps([proxies.dead, proxies.a.address]),
                                 "TWEETFORM_PROXY_CHECK_AT_START": "1", **FAST_RETRY})
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"proxy http://{proxies.dead} failed the start check (connection refused)" in result.stderr
    assert "proxy check at start: 1 of 2 proxies usable" in result.stderr
    assert ids_of(bucket(tmp_path, "friend_ids")[str(seed)]) == box.truth("following", seed)
    assert f"proxy http://{proxies.dead} is dead" not in result.stderr  # no crawl request went to it
    none_work = run_crawl(box, "friends", tmp_path / "none", user_id=seed, api="2", credentials=demo_credentials("demo-user-1"),
                          settings={"ROTATING_PROXY_LIST": proxies.dead, "TWEETFORM_PROXY_CHECK_AT_START": "1", **FULL_LOG})
    assert "stopping: no configured proxy works" in none_work.stderr and none_work.returncode == exitcodes.UNREACHABLE
    assert "'finish_reason': 'no_usable_proxies'" in none_work.stderr
    assert bucket(tmp_path / "none", "friend_ids") == {}


def test_all_proxies_dead_pages_fail_for_good_and_the_crawl_ends(sandbox_factory, proxies: Proxies, tmp_path: Path):
    box = sandbox_factory(*WORLD)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    result = run_crawl(box, "friends", tmp_path, user_id=seed, api="2", credentials=demo_credentials("demo-user-1"), timeout=60,
                       settings={**FAST_RETRY, "RETRY_TIMES": "1", "ROTATING_PROXY_PAGE_RETRY_TIMES": "2",
                                 "ROTATING_PROXY_LIST": json.dumps([proxies.dead, proxies.dropper.address])})
    assert result.returncode == exitcodes.UNREACHABLE, result.stderr[-3000:]  # no answer ever came back
    assert "page failed for good" in result.stderr and "'finish_reason': 'finished'" in result.stderr
    assert errors_of(tmp_path) == {str(seed): "failed"}  # reported, not lost
    assert result.stderr.count("no live proxy left") == 1  # one line, not one per request
    assert box.counters()["requests"] == 0  # nothing reached the API directly


# --- scrapy proxies check ---------------------------------------------------------------------

def test_proxies_check_reports_each_proxy(sandbox_factory, proxies: Proxies):
    box = sandbox_factory(*WORLD)
    wrong = proxies.auth.url(password="wrong-" + PASSWORD)
    listed = [proxies.a.address, proxies.auth.url(), proxies.dead, proxies.dropper.address]
    done = check_command(box, listed, settings={"TWEETFORM_PROXY_FILE": ""})
    assert done.returncode == 1, done.stderr  # some are dead
    rows = {line.split()[0]: line for line in done.stdout.splitlines()[1:-1]}
    head = done.stdout.splitlines()[0].split()
    assert head == ["proxy", "reachable", "latency", "status", "credential", "verdict"]
    a, auth = rows[f"http://{proxies.a.address}"].split(), rows[f"http://lab:***@{proxies.auth.address}"].split()
    for row in (a, auth):  # proxy, reachable, latency (n ms), status, credential, verdict
        assert row[1] == "yes" and row[2].isdigit() and row[3] == "ms"
        assert row[4:] == ["200", "demo-user-1", "usable", "(API", "answered)"]
    dead = rows[f"http://{proxies.dead}"]
    assert dead.split()[1:4] == ["no", "-", "-"] and dead.endswith("dead: connection refused")
    assert rows[f"http://{proxies.dropper.address}"].endswith("dead: connection dropped")
    assert done.stdout.splitlines()[-1] == "4 proxies: 2 usable, 2 dead"
    # the probes reached the API through the live proxies, signed with the credential
    assert via_names(clients(box)["demo-user-1"]) == {"tf-proxy-a", "tf-proxy-auth"}
    # a wrong password: the proxy's own error page; JSON output; the password never shown
    done = check_command(box, [wrong, proxies.b.address], "--json")
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 1
    assert lines[0]["proxy"] == f"http://lab:***@{proxies.auth.address}" and lines[0]["usable"] is False
    assert lines[0]["reachable"] is True and lines[0]["status"] in (401, 407) and lines[0]["verdict"].startswith("dead: proxy error")
    assert lines[1]["usable"] is True and lines[1]["status"] == 200
    assert PASSWORD not in done.stdout + done.stderr


def test_proxies_check_respects_pinning_and_reports_bad_settings(sandbox_factory, proxies: Proxies):
    box = sandbox_factory(*WORLD)
    creds = demo_credentials("demo-user-1", "demo-user-2")
    pins = json.dumps({"demo-user-1": proxies.a.address, "demo-user-2": proxies.b.address})
    done = check_command(box, [proxies.a.address, proxies.b.address], credentials=creds,
                         settings={"TWEETFORM_CREDENTIAL_PROXIES": pins})
    assert done.returncode == 0, done.stdout + done.stderr  # all usable: exit 0
    served = clients(box)
    assert via_names(served["demo-user-1"]) == {"tf-proxy-a"} and via_names(served["demo-user-2"]) == {"tf-proxy-b"}
    bad = check_command(box, ["http://lab:hunter2@127.0.0.1:notaport"])
    assert bad.returncode == 2 and bad.stderr.strip().startswith("tweetform: ROTATING_PROXY_LIST:")
    assert "hunter2" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1



# --- distributed mode: the shared queue and quota, this host's own proxies -----------------------

def test_distributed_crawl_uses_this_hosts_proxies_and_pins(sandbox_factory, redis_url: str, proxies: Proxies, tmp_path: Path):
    box = sandbox_factory(*WORLD, "--limit", f"{FOLLOWING}=5")
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    result = run_crawl(box, "friends", tmp_path, user_id=seed, depth=2, max_users=25, api="2",
                       credentials=demo_credentials("demo-user-1", "demo-user-2"),
                       settings={"REDIS_URL": redis_url, "ROTATING_PROXY_LIST": json.dumps([proxies.a.address, proxies.dead]),
                                 "TWEETFORM_CREDENTIAL_PROXIES": json.dumps({"demo-user-2": proxies.b.address}), **FAST_RETRY})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "RedisScheduler" in result.stderr or "scheduler/dequeued/redis" in result.stderr
    network_equals_truth(box, tmp_path, seed, 2, 25)
    served = clients(box)
    assert via_names(served["demo-user-2"]) == {"tf-proxy-b"}
    # unpinned: any live proxy of this host (B joined the list as a pinned proxy), never direct
    assert via_names(served["demo-user-1"]) <= {"tf-proxy-a", "tf-proxy-b"}
    assert proxies_marked_dead(result.stderr) in ({}, {proxies.dead: 1})  # if it was drawn, it died once
