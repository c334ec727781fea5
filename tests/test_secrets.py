"""Secrets never leave the process: every request serializer stores requests without credentials.

A request is signed (and given its proxy's password) by downloader middlewares
for each attempt; once it is queued — in Redis, in a ``JOBDIR`` disk queue —
nothing of that may remain. Each serializer gets a request made by the real
middleware chain (canary credentials, an authenticated proxy), and its bytes
are searched for every canary secret: plain, percent-encoded and base64 at
each of the three byte alignments.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from scrapy import Request, Spider
from scrapy.downloadermiddlewares.httpproxy import HttpProxyMiddleware
from scrapy.settings import Settings
from scrapy.utils.misc import load_object
from scrapy.utils.request import request_from_dict

from crawling import unit_crawler

from tweetform import settings as project_settings
from tweetform.api.auth import oauth1_header
from tweetform.credentials import Credential, parse_credentials
from tweetform.meta import META_CREDENTIAL, META_ENDPOINT
from tweetform.middlewares.signing import META_TOKEN_REQUEST, SigningMiddleware
from tweetform.proxies.middlewares import RotatingProxyMiddleware
from tweetform.quota.gate import META_LANE
from tweetform.requests_safety import DISK_QUEUES, strip_credentials
from tweetform.state.redis import serializer

FOLLOWING = "/2/users/:id/following"

#: canary credentials: every value but the alias is a secret that must never be seen outside the process
CANARY_USER = {"alias": "canary-user", "app_key": "CnryAppKeyU7x2Qw9Lm3Vb8Zt5", "app_secret": "CnryAppSecretU-4k8Hq2Wm7Xz1Rv6Tb9Yd3Np5Ls0Gf",
               "oauth_token": "1480000000000007919-CnryOauthTokenK3j9Wq2Lm8Vx4Zb7Tn1Rp5Hd6",
               "oauth_token_secret": "CnryTokenSecretM2n8Qw4Zx7Lb1Vk9Tr3Hp6Jd5Gs0"}
CANARY_APP = {"alias": "canary-app", "app_key": "CnryAppKeyA3v9Lq7Wx2Mz5Tb8", "app_secret": "CnryAppSecretA-8j2Kq5Wn1Xv7Rz4Tm6Yb3Pd9Lh0Gc",
              "bearer_token": "AAAAAAAAAAAAAAAAAAAAACnryBearerTokenQ8w2Lm5Zx9Vb3Tn7Rk1Hp4Jd6Gs0Ys2Xc"}
#: app-only with key and secret only: its bearer token is fetched (the sandbox issues it), Basic auth on the way
CANARY_FETCH = {"alias": "canary-fetch", "app_key": "CnryAppKeyF6m1Wq8Lz3Vx5Tb2", "app_secret": "CnryAppSecretF-2h7Kq9Wm4Xz6Rv1Tb8Yd5Np3Ls0Gk"}
PROXY_USER, PROXY_PASSWORD = "lab", "CnryProxyPassword-7Hq2Wm9Xz4"
REDIS_PASSWORD = "CnryRedisPassword-3Kd8Qw1Zx6"


def canary_secrets() -> list[str]:
    return [v for c in (CANARY_USER, CANARY_APP, CANARY_FETCH) for k, v in c.items() if k != "alias"] + [PROXY_PASSWORD]


def encodings(secret: str) -> set[bytes]:
    """How a secret can appear in bytes: plain, percent-encoded, base64 (standard and URL-safe) at each alignment."""
    raw = secret.encode()
    found = {raw, quote(secret, safe="").encode(), quote(secret).encode()}
    for start in range(3):  # the secret starting at each offset of a base64 group
        part = raw[start:]
        part = part[: len(part) // 3 * 3]
        if len(part) >= 6:
            found.add(base64.b64encode(part))
            found.add(base64.urlsafe_b64encode(part))
    return found


def canary_hits(data: bytes | str, secrets: list[str] | None = None) -> list[str]:
    """Every (secret, encoding) found in ``data``; empty means clean."""
    blob = data.encode() if isinstance(data, str) else data
    return [f"{secret[:12]}… as {needle[:16]!r}" for secret in (secrets or canary_secrets())
            for needle in encodings(secret) if needle in blob]


def crawler_with_canaries(**settings: object):
    creds = [CANARY_USER, CANARY_APP]
    return unit_crawler(Spider, {"TWEETFORM_CREDENTIALS": json.dumps(creds), "TWEETFORM_API_BASE": "http://api.test",
                                "ROTATING_PROXY_LIST": [f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:3128"], **settings})


def signed_requests(crawler) -> list[Request]:
    """Requests as the downloader middlewares leave them: proxy chosen, proxy auth header, signed."""
    rotating = RotatingProxyMiddleware.from_crawler(crawler)
    httpproxy = HttpProxyMiddleware.from_crawler(crawler)
    signing = SigningMiddleware.from_crawler(crawler)
    out = []
    for alias, kind in (("canary-user", "user"), ("canary-app", "app")):
        request = Request(f"http://api.test/2/users/12/following?max_results=1000&pagination_token={alias}",
                          meta={META_ENDPOINT: FOLLOWING, META_LANE: (alias, kind, "")})
        assert rotating.process_request(request) is None
        httpproxy.process_request(request)
        assert asyncio.run(signing.process_request(request)) is None
        assert request.headers.get("Authorization") and request.headers.get("Proxy-Authorization")
        out.append(request)
    # a proxy set by hand (not the rotating middleware's), before HttpProxyMiddleware has run
    out.append(Request("http://api.test/1.1/friends/ids.json", meta={"proxy": f"http://{PROXY_USER}:{PROXY_PASSWORD}@10.0.0.9:3128"},
                       headers={"Authorization": f"Bearer {CANARY_APP['bearer_token']}"}))
    return out


def test_the_canary_search_finds_each_encoding():
    secret = CANARY_USER["oauth_token_secret"]
    for prefix in (b"", b"x", b"xy"):
        assert canary_hits(base64.b64encode(prefix + secret.encode()), [secret])
    assert canary_hits(json.dumps({"h": quote(secret, safe="")}), [secret])
    assert not canary_hits(b"nothing here", [secret])


def test_canary_requests_carry_every_secret_before_stripping():
    """The check below means something: unstripped, the serialized requests hold the canaries."""
    requests = signed_requests(crawler_with_canaries())
    blob = b"".join(serializer_dumps_unstripped(r).encode() for r in requests)
    assert canary_hits(blob, [CANARY_USER["oauth_token"], CANARY_APP["bearer_token"], PROXY_PASSWORD])


def serializer_dumps_unstripped(request: Request) -> str:
    return json.dumps(serializer._encode(request.to_dict()))


def test_redis_serializer_stores_no_credential_and_requests_are_signed_again():
    crawler = crawler_with_canaries()
    requests = signed_requests(crawler)
    for request in requests:
        data = serializer.dumps(request.to_dict())
        assert canary_hits(data) == [], data
        assert request.headers.get("Authorization")  # the live request is not changed
        back = request_from_dict(serializer.loads(data))
        assert b"Authorization" not in back.headers and b"Proxy-Authorization" not in back.headers
        assert "_auth_proxy" not in back.meta
        assert back.url == request.url and back.meta.get(META_ENDPOINT) == request.meta.get(META_ENDPOINT)
    hand_set = request_from_dict(serializer.loads(serializer.dumps(requests[2].to_dict())))
    assert hand_set.meta["proxy"] == "http://10.0.0.9:3128"  # a proxy set by hand keeps its address
    # the next attempt is signed again, with a fresh signature
    signing = SigningMiddleware.from_crawler(crawler)
    back = request_from_dict(serializer.loads(serializer.dumps(requests[0].to_dict())))
    assert asyncio.run(signing.process_request(back)) is None
    assert back.headers["Authorization"].startswith(b"OAuth ") and back.headers["Authorization"] != requests[0].headers["Authorization"]


def everything_in(server: redis.Redis) -> bytes:
    """Every key and value in Redis, whatever its type."""
    out = []
    for key in server.scan_iter(count=1000):
        kind = server.type(key).decode()
        value = {"string": lambda: [server.get(key)], "list": lambda: server.lrange(key, 0, -1),
                 "set": lambda: list(server.smembers(key)), "zset": lambda: server.zrange(key, 0, -1),
                 "hash": lambda: [b for kv in server.hgetall(key).items() for b in kv],
                 "stream": lambda: [repr(server.xrange(key)).encode()]}.get(kind, lambda: [])()
        out += [key, *value]
    return b"\n".join(v if isinstance(v, bytes) else str(v).encode() for v in out)


def test_what_redis_receives_from_the_request_queue_holds_no_credential(redis_url: str):
    from tweetform.state.redis.queue import InFlightQueue

    crawler = crawler_with_canaries(REDIS_URL=redis_url)
    spider = Spider.from_crawler(crawler, name="friends")
    server = redis.Redis.from_url(redis_url)
    queue = InFlightQueue(server, spider, "unused")
    requests = signed_requests(crawler)
    assert all(queue.push_many([queue.prepare(r) for r in requests]))
    stored = everything_in(server)
    assert b"api.test/2/users/12/following" in stored and canary_hits(stored) == []
    assert all(r.headers.get("Authorization") for r in requests)  # the requests being sent keep theirs


def configured(name: str) -> type:
    settings = Settings()
    settings.setmodule(project_settings, priority="project")
    return load_object(settings[name])


@pytest.mark.parametrize("queue_cls", ["SCHEDULER_DISK_QUEUE", "SCHEDULER_START_DISK_QUEUE", *DISK_QUEUES],
                         ids=lambda c: c if isinstance(c, str) else c.__name__)
def test_disk_queues_store_no_credential(queue_cls: type | str, tmp_path: Path):
    if isinstance(queue_cls, str):  # the queue tweetform's settings configure
        queue_cls = configured(queue_cls)
    crawler = crawler_with_canaries()
    requests = signed_requests(crawler)
    queue = queue_cls.from_crawler(crawler, str(tmp_path / "q"))
    for request in requests:
        queue.push(request)
    queue.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert len(stored) > 100 and canary_hits(stored) == []
    queue = queue_cls.from_crawler(crawler, str(tmp_path / "q"))
    urls = set()
    while (back := queue.pop()) is not None:
        assert b"Authorization" not in back.headers and "_auth_proxy" not in back.meta
        urls.add(back.url)
    queue.close()
    assert urls == {r.url for r in requests}


def test_strip_credentials_keeps_everything_else():
    request = Request("http://api.test/x", method="POST", body=b"a=1", priority=3, dont_filter=True,
                      headers={"Accept": "application/json", "authorization": "Bearer x", "PROXY-AUTHORIZATION": "Basic y"},
                      meta={"proxy": "http://u:p@h:1", "_rotating_proxy": True, "_auth_proxy": "http://h:1", "depth": 2})
    stripped = strip_credentials(request.to_dict())
    assert stripped["headers"] == {b"Accept": [b"application/json"]}
    assert stripped["meta"] == {"_rotating_proxy": True, "depth": 2}  # the rotating middleware picks a proxy again
    assert (stripped["body"], stripped["priority"], stripped["dont_filter"], stripped["method"]) == (b"a=1", 3, True, "POST")
    assert request.meta["proxy"] == "http://u:p@h:1" and request.headers["Authorization"] == b"Bearer x"


def test_bearer_token_request_gets_its_basic_auth_for_each_attempt():
    crawler = unit_crawler(Spider, {"TWEETFORM_CREDENTIALS": json.dumps([CANARY_FETCH]), "TWEETFORM_API_BASE": "http://api.test"})
    signing = SigningMiddleware.from_crawler(crawler)
    first = Request("http://api.test/oauth2/token", method="POST", body=b"grant_type=client_credentials",
                    meta={META_TOKEN_REQUEST: True, META_CREDENTIAL: "canary-fetch"})
    retry = request_from_dict(strip_credentials(first.to_dict()))  # an attempt that lost its header
    for attempt in (first, retry):
        assert asyncio.run(signing.process_request(attempt)) is None
        kind, _, value = attempt.headers["Authorization"].partition(b" ")
        assert kind == b"Basic" and base64.b64decode(value).decode() == f"{CANARY_FETCH['app_key']}:{CANARY_FETCH['app_secret']}"


def test_oauthlib_logs_no_token_at_debug(caplog: pytest.LogCaptureFixture):
    cred = parse_credentials([CANARY_USER])[0]
    with caplog.at_level(logging.DEBUG):
        header = oauth1_header(cred, "GET", "http://api.test/1.1/friends/ids.json?user_id=12")
    assert CANARY_USER["oauth_token"] in header
    assert canary_hits(caplog.text) == [], caplog.text


def test_proxies_check_logs_no_secret_at_debug(sandbox, caplog: pytest.LogCaptureFixture):
    """`scrapy proxies check` signs with requests-oauthlib (which logs signed headers at DEBUG) and fetches tokens."""
    from test_proxies import TinyProxy

    from tweetform.proxies.check import check_proxy
    from tweetform.sandbox.credentials import DEMO_CREDENTIALS

    user, app = (next(c for c in DEMO_CREDENTIALS if c.alias == a) for a in ("demo-user-1", "demo-app-1"))
    creds = parse_credentials([user.as_settings(), {"alias": app.alias, "app_key": app.app_key, "app_secret": app.app_secret}])
    proxy = TinyProxy("tf-proxy-check", user=PROXY_USER, password=PROXY_PASSWORD).start()
    try:
        with caplog.at_level(logging.DEBUG):
            results = [check_proxy(proxy.url(), sandbox.base, cred, timeout=10) for cred in creds]
    finally:
        proxy.stop()
    assert [(r.usable, r.status) for r in results] == [(True, 200), (True, 200)], [r.reason for r in results]
    secrets = [user.app_secret, user.oauth_token, user.oauth_token_secret, app.app_secret, app.bearer_token, PROXY_PASSWORD]
    assert caplog.records and canary_hits(caplog.text, secrets) == [], caplog.text[-3000:]


def test_jobdir_queue_holds_no_credential_and_a_resumed_crawl_is_signed_again(tmp_path: Path):
    """A crawl stopped with requests waiting in JOBDIR's queue: nothing there holds a secret; resumed, it finishes."""
    import signal
    import subprocess
    import sys

    from conftest import ROOT
    from tweetform.testing.servers import SandboxProcess
    from crawling import crawl_env
    from test_proxies import network_equals_truth

    sandbox_creds = tmp_path / "sandbox-credentials.json"
    sandbox_creds.write_text(json.dumps([CANARY_USER, CANARY_FETCH]))
    box = SandboxProcess("--users", "3000", "--seed", "7", "--window", "1", "--limit", f"{FOLLOWING}=2",
                         "--error-rate", "0.1", "--credentials", str(sandbox_creds))
    try:
        seed = box.get("/_sandbox/examples")["ordinary"][0]
        output, jobdir = tmp_path / "out", tmp_path / "job"
        env = crawl_env(box, output, [CANARY_USER, CANARY_FETCH])
        cmd = [sys.executable, "-m", "scrapy", "crawl", "friends", "-a", f"user_id={seed}", "-a", "depth=2", "-a", "max_users=15",
               "-a", "api=2", "-s", f"JOBDIR={jobdir}", "-s", "TWEETFORM_RETRY_BACKOFF=0.05", "-s", "RETRY_TIMES=10", "-L", "DEBUG"]
        first = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        log = ""
        assert first.stderr is not None
        for line in first.stderr:  # stop once pages come back and others wait for quota in the queue
            log += line
            if "DEBUG: Crawled (200)" in line and log.count("DEBUG: Crawled (200)") >= 3:
                first.send_signal(signal.SIGINT)  # Scrapy's graceful stop: the queue stays in JOBDIR
                break
        log += first.communicate(timeout=60)[1]
        stored = b"".join(p.read_bytes() for p in jobdir.rglob("*") if p.is_file())
        assert b"/following" in stored  # requests were waiting in the queue when the crawl stopped
        assert canary_hits(stored) == [] and canary_hits(log) == [], (canary_hits(stored), canary_hits(log))
        again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr[-3000:]
        assert canary_hits(again.stderr) == []
        network_equals_truth(box, output, seed, 2, 15)
        assert box.counters()["statuses"].get("401", 0) == 0  # every attempt, from the queue or not, was signed
    finally:
        box.stop()


def test_a_credential_never_signs_with_the_keys_of_one_freed_before_it():
    """The OAuth client cache is keyed by the credential itself: a new credential that takes a freed
    one's id() (CPython reuses the memory) signs with its own keys (before: with the freed one's)."""
    keys = [dict(alias=f"u{n}", app_key=f"key{n}", app_secret=f"secret{n}", oauth_token=f"{n}-token", oauth_token_secret=f"token-secret{n}")
            for n in range(2000)]

    def user(n: int) -> Credential:
        return Credential(**keys[n])  # nothing else allocated in between: the freed memory comes back

    first = user(0)
    oauth1_header(first, "GET", "https://api.x.com/2/users/12")
    freed_id = id(first)
    del first
    candidates = []
    for n in range(1, 2000):  # keep them alive until one takes the freed id
        candidates.append(user(n))
        if id(candidates[-1]) == freed_id:
            break
    assert id(candidates[-1]) == freed_id, "no credential reused the freed id: the test proves nothing"
    header = oauth1_header(candidates[-1], "GET", "https://api.x.com/2/users/12")
    n = len(candidates)
    assert f'oauth_consumer_key="key{n}"' in header and f'oauth_token="{n}-token"' in header
