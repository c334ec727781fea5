"""Crawls through faults, rate limits and bad credentials: nothing lost, nothing leaked."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path

import requests
from crawling import FULL_LOG, ROOT, bucket, crawl_env, demo_credentials, errors_of, ids_of, run_crawl

FAST_RETRY = {"TWEETFORM_RETRY_BACKOFF": "0.05", "TWEETFORM_RETRY_BACKOFF_MAX": "0.2", "RETRY_TIMES": "8"}
WORLD = ("--users", "3000", "--seed", "7", "--window", "1")


def reachable_lists_equal_truth(box, output: Path, seed: int, depth: int, max_users: int) -> None:
    expected = box.get(f"/_sandbox/truth/reachable?seeds={seed}&depth={depth}&direction=friends&max_users={max_users}")["ids"]
    pages = bucket(output, "friend_ids")
    protected = {k for k, v in errors_of(output).items() if v == "protected"}
    assert set(pages) | protected == {str(u) for u in expected}
    for key, lines in pages.items():
        assert ids_of(lines) == box.truth("following", int(key))
        pids = [line["__tweetform"]["page_id"] for line in lines]
        assert len(pids) == len(set(pids))


def test_server_errors_truncation_and_drops_are_retried(sandbox_factory, tmp_path: Path):
    box = sandbox_factory(*WORLD, "--limit", "/2/users/:id/following=500", "--limit", "/friends/ids=500")
    examples = box.get("/_sandbox/examples")
    box.post("/_sandbox/faults", {"error": 0.15, "truncate": 0.1, "drop": 0.1})
    seed = examples["ordinary"][0]
    # a try meets a fault 35 % of the time: with RETRY_TIMES=8 a page failed all 9 tries at 0.35 ** 9 = 8e-5, one
    # run in 200-400 (30-60 pages); 16 retries make it 2e-8 a page, and a page that fails for good still fails the test
    for api in ("2", "1.1"):
        out = tmp_path / api
        result = run_crawl(box, "friends", out, user_id=seed, depth=2, max_users=30, api=api, settings={**FAST_RETRY, "RETRY_TIMES": "16"})
        assert result.returncode == 0, result.stderr[-2000:]
        reachable_lists_equal_truth(box, out, seed, 2, 30)
        assert "page failed for good" not in result.stderr
    faults = box.counters()["faults"]
    assert faults["error"] > 0 and faults["truncate"] > 0 and faults["drop"] > 0


def test_page_that_never_succeeds_is_reported(sandbox_factory, tmp_path: Path):
    box = sandbox_factory(*WORLD)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    box.post("/_sandbox/faults", {"error": 1})
    result = run_crawl(box, "friends", tmp_path, user_id=seed, settings={**FAST_RETRY, "RETRY_TIMES": "2"})
    assert "page failed for good" in result.stderr
    errors = bucket(tmp_path, "errors")
    records = [line for lines in errors.values() for line in lines]
    assert [(r["reason"], r["id"], r["status"]) for r in records] in ([("failed", str(seed), 503)], [("failed", str(seed), 500)])
    assert box.counters()["statuses"].get("200", 0) == 0
    assert sum(box.counters()["statuses"].values()) == 3  # first try + 2 retries


def test_rate_limit_waits_for_reset_and_completes(sandbox_factory, tmp_path: Path):
    # 4 requests per 1-second window: a depth-2 crawl needs several windows
    box = sandbox_factory(*WORLD, "--limit", "/2/users/:id/following=4")
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    result = run_crawl(box, "friends", tmp_path, user_id=seed, depth=2, max_users=12, api="2",
                       credentials=demo_credentials("demo-user-1"))
    assert result.returncode == 0, result.stderr[-2000:]
    reachable_lists_equal_truth(box, tmp_path, seed, 2, 12)
    limits = [c for c in box.counters()["limits"] if c["endpoint"] == "/2/users/:id/following"]
    assert limits and all(c["max_served_in_window"] <= 4 for c in limits)


def test_revoked_credential_leaves_rotation_others_finish(sandbox_factory, tmp_path: Path):
    # 8 requests per window: the crawl needs both credentials, so it meets the revoked one
    box = sandbox_factory(*WORLD, "--limit", "/2/users/:id/following=8")
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    box.post("/_sandbox/revoke/demo-user-2")
    try:
        result = run_crawl(box, "friends", tmp_path, user_id=seed, depth=2, max_users=20, api="2",
                           credentials=demo_credentials("demo-user-1", "demo-user-2"))
    finally:
        box.post("/_sandbox/restore/demo-user-2")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "credential 'demo-user-2' taken out of rotation" in result.stderr
    reachable_lists_equal_truth(box, tmp_path, seed, 2, 20)


def test_all_credentials_rejected_stops_with_one_clear_line(sandbox_factory, tmp_path: Path):
    box = sandbox_factory(*WORLD)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    bad = [dict(c, oauth_token_secret="x" * 45) for c in demo_credentials("demo-user-1", "demo-user-2")]
    result = run_crawl(box, "friends", tmp_path, user_id=seed, depth=2, credentials=bad, settings=FULL_LOG)
    assert "no usable credential" in result.stderr
    assert result.stderr.count("taken out of rotation") == 2
    assert "finish_reason': 'no_usable_credentials'" in result.stderr
    assert bucket(tmp_path, "friend_ids") == {}


def test_canary_secrets_never_leave_their_settings(sandbox_factory, tmp_path: Path):
    canary = {
        "alias": "canary-user", "app_key": "CanaryAppKey0000000000001",
        "app_secret": "CanaryAppSecret" + "S" * 35, "oauth_token": "42-CanaryOauthToken" + "T" * 21,
        "oauth_token_secret": "CanaryTokenSecret" + "U" * 28,
    }
    app_only = {"alias": "canary-app", "app_key": "CanaryAppKey0000000000002", "app_secret": "CanaryAppSecretTwo" + "V" * 32}
    creds_file = tmp_path / "sandbox-creds.json"
    creds_file.write_text(json.dumps([canary, app_only]))
    box = sandbox_factory(*WORLD, "--credentials", str(creds_file))
    basic = base64.b64encode(f"{app_only['app_key']}:{app_only['app_secret']}".encode()).decode()
    bearer = requests.post(box.url("/oauth2/token"), data={"grant_type": "client_credentials"},
                           headers={"Authorization": f"Basic {basic}"}, timeout=10).json()["access_token"]
    examples = box.get("/_sandbox/examples")
    out = tmp_path / "out"
    results = [
        run_crawl(box, "friends", out, user_id=examples["ordinary"][0], depth=2, max_users=5, credentials=[canary, app_only], api=api)
        for api in ("2", "1.1")
    ]
    results.append(run_crawl(box, "search", out, query="research data", archive="true", credentials=[canary, app_only], api="2"))
    results.append(run_crawl(box, "friends", out, user_id=examples["protected"][0], credentials=[dict(canary, app_secret="wrong" + canary["app_secret"])]))
    secrets = [canary["app_secret"], canary["oauth_token"], canary["oauth_token_secret"], app_only["app_secret"], bearer]
    # every file under the output directory, the jobs' queue and state databases too (bytes as latin-1: ASCII secrets show)
    texts = [r.stdout + r.stderr for r in results] + [p.read_bytes().decode("latin-1") for p in out.rglob("*") if p.is_file()]
    assert any("canary-app" in t for t in texts) and len(list(out.rglob("*.jsonl"))) >= 3
    for secret in secrets:
        for fragment in (secret, secret[-20:]):
            assert not any(fragment in t for t in texts), "a secret leaked"


def test_credential_revoked_mid_crawl(sandbox_factory, tmp_path: Path):
    box = sandbox_factory(*WORLD, "--latency", "0.3", "--limit", "/2/users/:id/following=6")
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    env = crawl_env(box, tmp_path, demo_credentials("demo-user-1", "demo-user-2"))
    proc = subprocess.Popen([sys.executable, "-m", "scrapy", "crawl", "friends", "-a", f"user_id={seed}", "-a", "depth=2",
                             "-a", "max_users=30", "-a", "api=2"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not served_by(box, "demo-user-2"):
            time.sleep(0.05)
        assert served_by(box, "demo-user-2"), "demo-user-2 was never used"
        box.post("/_sandbox/revoke/demo-user-2")  # mid-crawl
        out, _ = proc.communicate(timeout=180)
    finally:
        box.post("/_sandbox/restore/demo-user-2")
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out[-2000:]
    assert "credential 'demo-user-2' taken out of rotation" in out
    reachable_lists_equal_truth(box, tmp_path, seed, 2, 30)


def served_by(box, alias: str) -> int:
    return sum(c["served"] for c in box.counters()["limits"] if c["alias"] == alias)
