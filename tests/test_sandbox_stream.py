"""The sandbox's filtered stream endpoints, over HTTP: the API's shapes, refusals and limits."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests

from crawling import demo_credentials
from tweetform.api.auth import oauth1_header
from tweetform.sandbox.clock import LogicalClock
from tweetform.sandbox.config import SandboxConfig
from tweetform.stream.client import StreamClient
from tweetform.credentials import parse_credentials

#: the world created at a fixed noon UTC (--epoch): the hour of posts the tests advance through never crosses a UTC
#: midnight, which the sandbox bills as another day (the client's day comes from the connection's Date header)
NOON = 1796558400  # 2026-12-06T12:00:00Z
STREAM_WORLD = ("--users", "3000", "--seed", "7", "--window", "1", "--evolve-every", "3600", "--stream-keepalive", "0.2",
                "--epoch", str(NOON))
PROBLEMS = "https://api.twitter.com/2/problems/"


@pytest.fixture
def box(sandbox_factory: Any) -> Any:
    return sandbox_factory(*STREAM_WORLD)


def bearer(alias: str = "demo-app-1") -> dict[str, str]:
    return {"Authorization": f"Bearer {demo_credentials(alias)[0]['bearer_token']}"}


def post_rules(box: Any, payload: Any, query: str = "") -> requests.Response:
    return requests.post(box.url(f"/2/tweets/search/stream/rules{query}"), data=json.dumps(payload), headers=bearer(), timeout=10)


def test_rules_add_list_delete_shapes(box: Any) -> None:
    added = post_rules(box, {"add": [{"value": "lang:es", "tag": "es"}, {"value": "#data"}]}).json()
    assert added["meta"]["summary"] == {"created": 2, "not_created": 0, "valid": 2, "invalid": 0}
    assert [(r["value"], r.get("tag")) for r in added["data"]] == [("lang:es", "es"), ("#data", None)]
    ids = [r["id"] for r in added["data"]]
    # one refused rule: none of the request's rules is created
    mixed = post_rules(box, {"add": [{"value": "lang:fr"}, {"value": "-data"}, {"value": "x" * 1025}]}).json()
    assert mixed["meta"]["summary"] == {"created": 0, "not_created": 3, "valid": 1, "invalid": 2}
    assert [e["title"] for e in mixed["errors"]] == ["UnprocessableEntity", "UnprocessableEntity"]
    assert mixed["errors"][0]["type"] == PROBLEMS + "invalid-rules" and "data" not in mixed
    dry = post_rules(box, {"add": [{"value": "lang:fr"}]}, "?dry_run=true").json()
    assert dry["meta"]["summary"]["created"] == 0 and dry["data"][0]["value"] == "lang:fr"
    listed = requests.get(box.url("/2/tweets/search/stream/rules?max_results=1"), headers=bearer(), timeout=10).json()
    assert [r["id"] for r in listed["data"]] == ids[:1] and listed["meta"]["result_count"] == 1 and listed["meta"]["next_token"]
    page2 = requests.get(box.url(f"/2/tweets/search/stream/rules?max_results=1&pagination_token={listed['meta']['next_token']}"),
                         headers=bearer(), timeout=10).json()
    assert [r["id"] for r in page2["data"]] == ids[1:] and "next_token" not in page2["meta"]
    gone = post_rules(box, {"delete": {"values": ["#data", "nope"]}}).json()
    assert gone["meta"]["summary"] == {"deleted": 1, "not_deleted": 1} and gone["errors"][0]["value"] == "nope"
    # rules are the app's: the other app sees none
    other = requests.get(box.url("/2/tweets/search/stream/rules"), headers=bearer("demo-app-2"), timeout=10).json()
    assert "data" not in other and other["meta"]["result_count"] == 0


def test_bad_requests_and_the_apps_only_endpoints(box: Any) -> None:
    bad = post_rules(box, {"add": [], "delete": {"ids": ["1"]}})
    assert bad.status_code == 400 and bad.json()["title"] == "Invalid Request"
    url = box.url("/2/tweets/search/stream")
    user = requests.get(url, timeout=10, headers={"Authorization": oauth1_header(
        parse_credentials(demo_credentials("demo-user-1"))[0], "GET", url)})
    assert user.status_code == 403 and user.json()["title"] == "Unsupported Authentication"  # app-only, as the API
    no_rules = requests.get(box.url("/2/tweets/search/stream"), headers=bearer(), timeout=10)
    assert no_rules.status_code == 409 and no_rules.json()["title"] == "ConnectionException"
    post_rules(box, {"add": [{"value": "lang:es"}]})
    too_far = requests.get(box.url("/2/tweets/search/stream?backfill_minutes=6"), headers=bearer(), timeout=10)
    assert too_far.status_code == 400
    # (the first stream waits for the world's engagement index: seconds on a busy machine)
    with requests.get(box.url("/2/tweets/search/stream"), headers=bearer(), stream=True, timeout=60) as first:
        assert first.status_code == 200
        lines = first.iter_lines()
        assert next(lines) == b""  # a keep-alive after 0.2 s of silence
        second = requests.get(box.url("/2/tweets/search/stream"), headers=bearer(), timeout=10)
        assert second.status_code == 429
        assert second.json()["connection_issue"] == "TooManyConnections"
        assert second.json()["type"] == PROBLEMS + "streaming-connection"


def test_backfill_is_asked_on_reconnects_and_on_a_resumed_jobs_first_connection() -> None:
    cred = parse_credentials(demo_credentials("demo-app-1"))[0]
    fresh = StreamClient("http://api", cred, {}, backfill_minutes=5, read_timeout=1)
    assert "backfill_minutes" not in fresh.next_url()
    fresh.connections = 1  # a reconnect
    assert fresh.next_url().endswith("backfill_minutes=5")
    resumed = StreamClient("http://api", cred, {}, backfill_minutes=3, read_timeout=1, backfill_first=True)
    assert resumed.next_url().endswith("backfill_minutes=3")


def test_twarc2_manages_rules_and_reads_the_stream_unchanged(box: Any) -> None:
    """twarc 2.14's own client (rules, stream()) against the sandbox, only its host changed."""
    import threading

    from requests.adapters import HTTPAdapter
    from twarc.client2 import Twarc2

    base = box.base

    class ToSandbox(HTTPAdapter):
        def send(self, request: Any, **kwargs: Any) -> Any:
            request.url = base + request.url[len("https://api.twitter.com"):]
            return super().send(request, **kwargs)

    client = Twarc2(bearer_token=demo_credentials("demo-app-1")[0]["bearer_token"], metadata=False)
    client.connect()
    client.client.mount("https://api.twitter.com", ToSandbox())
    started = box.get("/_sandbox/stream")["started"]
    clock = box.get("/_sandbox/clock")
    box.post("/_sandbox/clock", {"offset": clock["offset"] - (clock["now"] - started) + 1.0})
    added = client.add_stream_rules([{"value": "lang:es OR lang:fr", "tag": "romance"}])
    assert added["meta"]["summary"]["created"] == 1
    assert [r["value"] for r in client.get_stream_rules()["data"]] == ["lang:es OR lang:fr"]
    expected = box.get(f"/_sandbox/truth/stream?app=demo-app-1&since={started + 1}&until={started + 1801}")["ids"]
    got: list[dict[str, Any]] = []

    assert expected

    def read() -> None:
        stream = client.stream(expansions="author_id", tweet_fields="created_at")
        for post in stream:
            got.append(post)
            if len(got) == len(expected):
                break
        stream.close()
        client.last_response.close()  # the app's one connection is free again

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    while not box.get("/_sandbox/stream")["connections"] and time.monotonic() < deadline:
        time.sleep(0.05)
    box.post("/_sandbox/clock", {"advance": 1800})
    reader.join(60)
    assert [p["data"]["id"] for p in got] == sorted(expected, key=int)  # oldest first, each once
    assert all(p["matching_rules"][0]["tag"] == "romance" and p["includes"]["users"] for p in got)
    deadline = time.monotonic() + 10
    while box.get("/_sandbox/stream")["connections"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert box.get("/_sandbox/stream")["connections"] == {}
    client.delete_stream_rule_ids([client.get_stream_rules()["data"][0]["id"]])
    assert "data" not in client.get_stream_rules()


def test_the_sandboxs_epoch_puts_the_world_and_its_logical_clock_at_that_time() -> None:
    clock = LogicalClock(wall=lambda: 2_000_000_000.0, epoch=NOON)
    assert clock.now() == clock.started == NOON and clock.elapsed() == 0 and clock.day() == "2026-12-06"
    assert LogicalClock(wall=lambda: 2_000_000_000.0).started == 2_000_000_000.0  # default: created now
    for bad in ("inf", "-1", "noon"):
        with pytest.raises(ValueError, match="epoch"):
            SandboxConfig().update({"epoch": bad})
