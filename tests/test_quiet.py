"""Quiet, and from anywhere (issue 16 §5): a small crawl prints a few readable lines, no warning nobody can act
on; ``tweetform`` works from any directory; ``scrapy sandbox`` says how to point a shell at it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from crawling import ROOT, bucket, crawl_env, ids_of

TWEETFORM = str(Path(sys.executable).with_name("tweetform"))  # the console script pip installed beside python
FAST = ("--users", "3000", "--seed", "7", "--window", "1")


@pytest.fixture
def box(sandbox_factory):
    return sandbox_factory(*FAST)


def test_a_three_page_crawl_prints_a_few_readable_lines(box, tmp_path: Path):
    """Today's code printed 111 lines here: versions, components, settings, two warnings, the stats."""
    env = crawl_env(box, tmp_path / "out")
    done = subprocess.run([sys.executable, "-m", "scrapy", "crawl", "users", "-a", "user_id=12,13,14", "-a", "job=small"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) <= 5, lines
    assert not [line for line in lines if "WARNING" in line or "ERROR" in line], lines
    assert " INFO: job small: users api=2 user_ids=[12, 13, 14], writing to " in lines[0]
    assert lines[-2].startswith("tweetform: job small ended: exit status 0 (done); 1 page(s), 2 error record(s), 0 failed; $0.010 spent")
    assert lines[-1].startswith("tweetform: data in ")
    # -L DEBUG (or a LOG_FILE) brings Scrapy's dumps back
    debug = subprocess.run([sys.executable, "-m", "scrapy", "crawl", "users", "-a", "user_id=12", "-L", "DEBUG"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert "DEBUG: Overridden settings:" in debug.stderr and "DEBUG: Dumping Scrapy stats:" in debug.stderr
    assert "RefererMiddleware" not in debug.stderr  # the warning is gone, not hidden below the level


def test_tweetform_command_works_from_any_directory(box, tmp_path: Path, redis_url: str):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = crawl_env(box, tmp_path / "out")
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    done = subprocess.run([TWEETFORM, "crawl", "friends", "-a", f"user_id={seed}"], cwd=elsewhere, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert ids_of(bucket(tmp_path / "out", "friend_ids")[str(seed)]) == box.truth("following", seed)
    assert list(elsewhere.iterdir()) == []  # nothing written where it ran
    status = subprocess.run([TWEETFORM, "status", "--json"], cwd=elsewhere, env={**env, "REDIS_URL": redis_url},
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    assert "jobs" in json.loads(status.stdout)
    plain = subprocess.run([sys.executable, "-m", "scrapy", "status"], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert plain.returncode != 0  # plain scrapy outside the project knows no tweetform command (why the command exists)


def test_sandbox_prints_the_lines_that_point_a_shell_at_it(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWEETFORM_")}
    proc = subprocess.Popen([TWEETFORM, "sandbox", "--port", "0", "--users", "3000", "--seed", "7"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        listening = proc.stdout.readline()
        exports = [proc.stdout.readline().strip() for _ in range(2)]
        assert listening.startswith("tweetform sandbox listening on http://127.0.0.1:")
        base = listening.strip().rsplit(" ", 1)[-1]
        assert exports[0] == f"export TWEETFORM_API_BASE={base}"
        assert exports[1].startswith("export TWEETFORM_CREDENTIALS_FILE=/")
        # a shell that ran those two lines crawls the sandbox
        shell_env = {**env, "TWEETFORM_OUTPUT_DIR": str(tmp_path / "out"),
                     **dict(line[len("export "):].split("=", 1) for line in exports)}
        done = subprocess.run([TWEETFORM, "crawl", "users", "-a", "user_id=12"], cwd=tmp_path, env=shell_env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert len(bucket(tmp_path / "out", "users")) == 1
        credentials = Path(exports[1].split("=", 1)[1])
        assert credentials.exists()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    deadline = time.monotonic() + 5
    while credentials.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not credentials.exists()  # removed when the sandbox stops
