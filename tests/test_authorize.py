"""``scrapy authorize`` end to end against the sandbox's OAuth endpoints, then a crawl with what it saved."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from crawling import ROOT, bucket

from tweetform.commands.authorize import AuthorizeError, append_credential
from tweetform.config import load_local_settings
from tweetform.sandbox.credentials import DEMO_CREDENTIALS
from tweetform.sandbox.oauth_flow import TEST_PIN

APP = next(c for c in DEMO_CREDENTIALS if c.alias == "demo-user-1")  # its app key and secret


def env_for(box, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWEETFORM_", "REDIS_"))}
    env.update(TWEETFORM_API_BASE=box.base, PYTHONWARNINGS="error", TWEETFORM_QUOTA_RESET_MARGIN="0.1", **extra)
    return env


def authorize(box, *args: str, stdin: str = "") -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "scrapy", "authorize", *args], cwd=ROOT, env=env_for(box),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def pin_flow(box, settings: Path, alias: str, open_url: bool = True, pin: str | None = None) -> tuple[int, str, str]:
    """Run the command as a user would: give the secret, open the URL it prints, type the PIN shown there."""
    proc = authorize(box, alias, "--app-key", APP.app_key, "--file", str(settings))
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(APP.app_secret + "\n")
    proc.stdin.flush()
    printed = ""
    url = None
    while url is None:
        line = proc.stdout.readline()
        if not line:
            break
        printed += line
        found = re.search(r"(http://\S+/oauth/authorize\?oauth_token=\S+)", line)
        url = found.group(1) if found else None
    assert url is not None, printed + (proc.stderr.read() if proc.stderr else "")
    if open_url:
        with urllib.request.urlopen(url, timeout=30) as resp:
            page = resp.read().decode()
        shown = re.search(r'<code id="oauth_pin">(\d+)</code>', page)
        assert shown is not None, page
        pin = pin or shown.group(1)
    out, err = proc.communicate((pin or TEST_PIN) + "\n", timeout=60)
    return proc.returncode, printed + out, err


def crawl_with(box, settings: Path, output: Path, *args: str) -> subprocess.CompletedProcess:
    env = env_for(box, TWEETFORM_SETTINGS_LOCAL=str(settings), TWEETFORM_OUTPUT_DIR=str(output))
    return subprocess.run([sys.executable, "-m", "scrapy", "crawl", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_pin_flow_end_to_end(sandbox, tmp_path: Path):
    settings = tmp_path / "settings_local.py"
    code, out, err = pin_flow(sandbox, settings, "lab-user-1")
    assert code == 0, err
    assert "saved credential 'lab-user-1' (user context for @" in out
    assert stat.S_IMODE(settings.stat().st_mode) == 0o600
    saved = load_local_settings(settings)["TWEETFORM_CREDENTIALS"]
    assert [c["alias"] for c in saved] == ["lab-user-1"] and saved[0]["app_key"] == APP.app_key
    for secret in (APP.app_secret, saved[0]["oauth_token_secret"], saved[0]["oauth_token"]):
        assert secret not in out and secret not in err
    # the new credential is a real one: the sandbox accepts it, and a crawl made with it says so
    seed = sandbox.get("/_sandbox/examples")["ordinary"][0]
    result = crawl_with(sandbox, settings, tmp_path / "data", "timeline", "-a", f"user_id={seed}", "-a", "max_tweets=20")
    assert result.returncode == 0, result.stderr[-3000:]
    pages = bucket(tmp_path / "data", "timelines")[str(seed)]
    assert {p["__tweetform"]["credential"] for p in pages} == {"lab-user-1"}
    served_to = {c["alias"] for c in sandbox.counters()["limits"]}
    assert len(served_to) == 1 and next(iter(served_to)).startswith("authorized-")


def test_bearer_token_fetch(sandbox, tmp_path: Path):
    settings = tmp_path / "settings_local.py"
    proc = authorize(sandbox, "lab-app", "--bearer", "--app-key", APP.app_key, "--file", str(settings))
    out, err = proc.communicate(APP.app_secret + "\n", timeout=60)
    assert proc.returncode == 0, err
    assert "saved credential 'lab-app' (app-only bearer token)" in out
    assert stat.S_IMODE(settings.stat().st_mode) == 0o600
    saved = load_local_settings(settings)["TWEETFORM_CREDENTIALS"][0]
    assert set(saved) == {"alias", "app_key", "bearer_token"} and saved["bearer_token"] not in out + err
    seed = sandbox.get("/_sandbox/examples")["ordinary"][0]
    result = crawl_with(sandbox, settings, tmp_path / "data", "users", "-a", f"user_id={seed}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert [c["kind"] for c in sandbox.counters()["limits"]] == ["app"]


def test_refusals_are_one_line_and_write_nothing(sandbox, tmp_path: Path):
    settings = tmp_path / "settings_local.py"
    # the PIN typed without approving the app first (the sandbox gives no PIN then)
    code, out, err = pin_flow(sandbox, settings, "lab-user-1", open_url=False, pin="1234567")
    assert code == 2 and err.strip() == "tweetform: the API refused the PIN (HTTP 401)"
    # a wrong app secret
    proc = authorize(sandbox, "lab-user-1", "--app-key", APP.app_key, "--file", str(settings))
    out, err = proc.communicate("not-the-secret\n", timeout=60)
    assert proc.returncode == 2 and err.strip() == "tweetform: the API refused the app key and secret (HTTP 401)"
    assert not settings.exists()


def test_alias_taken(tmp_path: Path):
    settings = tmp_path / "settings_local.py"
    settings.write_text('TWEETFORM_CREDENTIALS = [{"alias": "lab-app", "bearer_token": "x"}]\n')
    append_credential(settings, {"alias": "lab-app-2", "bearer_token": "y"}, "test")
    assert stat.S_IMODE(settings.stat().st_mode) == 0o600  # an existing file is made private too
    assert [c["alias"] for c in load_local_settings(settings)["TWEETFORM_CREDENTIALS"]] == ["lab-app", "lab-app-2"]
    with pytest.raises(AuthorizeError, match="already has a credential named 'lab-app'"):
        append_credential(settings, {"alias": "lab-app", "bearer_token": "z"}, "test")
