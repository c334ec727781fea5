"""Every stop continues without paying twice (issue 16 §3): a local crawl keeps its queue and state under the
output directory (``<output>/_jobs/<job>/``) without any JOBDIR, and its stop line prints the one command
that continues it; the quota learnt before the stop is kept, so the continued crawl provokes no 429."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from crawling import ROOT, bucket, crawl_env, demo_credentials, errors_of, ids_of

from tweetform.exitcodes import BUDGET_EXHAUSTED, DONE, INTERRUPTED

FAST = ("--users", "3000", "--seed", "7", "--window", "1")
COMMAND = re.compile(r"`((?:scrapy|tweetform) crawl [^`]+)` continues it")


@pytest.fixture
def box(sandbox_factory):
    return sandbox_factory(*FAST)


def run(env: dict[str, str], command: str) -> subprocess.CompletedProcess:
    """A command as a user would paste it (``scrapy …`` is this virtualenv's)."""
    argv = shlex.split(command)
    assert argv[0] == "scrapy"
    return subprocess.run([sys.executable, "-m", "scrapy", *argv[1:]], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=240)


def printed_command(stderr: str) -> str:
    found = COMMAND.findall(stderr)
    assert found, stderr[-3000:]
    return found[-1]


def assert_complete_and_fetched_once(box, output: Path, seed: int, depth: int) -> None:
    truth = box.get(f"/_sandbox/truth/reachable?seeds={seed}&depth={depth}&direction=friends")["ids"]
    lists = bucket(output, "friend_ids")
    unlisted = {k for k, v in errors_of(output).items() if v in ("protected", "suspended", "not_found")}
    assert set(lists) | unlisted == {str(u) for u in truth}
    for key, lines in lists.items():
        assert ids_of(lines) == box.truth("following", int(key)), key  # each list whole, each page once
    pages = sum(len(p) for p in lists.values())
    errors = [p for ps in bucket(output, "errors").values() for p in ps if p["status"] == 200]
    assert box.counters()["statuses"]["200"] == pages + len(errors)  # no page fetched (and paid) twice


def test_a_crawl_stopped_by_its_budget_continues_with_the_command_it_prints(box, tmp_path: Path):
    """Today's code said 'run it again … with the same JOBDIR' though there was none: the queue was gone, and
    running the same command again paid again for everything."""
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    env = crawl_env(box, tmp_path)
    first = run(env, f"scrapy crawl friends -a user_id={seed} -a depth=2 -a budget=0.5")
    assert first.returncode == BUDGET_EXHAUSTED, first.stderr[-3000:]
    [stop] = [line for line in first.stderr.splitlines() if "stopped at its budget" in line]
    command = printed_command(stop)
    job = re.search(r"-a job=(\S+)", command).group(1)
    assert command == f"scrapy crawl friends -a user_id={seed} -a depth=2 -a job={job} -a budget=1.5"
    assert (tmp_path / "_jobs" / job / "tweetform.sqlite").exists()  # under the output directory
    for _ in range(20):  # each run pays for what the budget leaves; nothing is paid twice
        again = run(env, command)
        assert again.returncode in (DONE, BUDGET_EXHAUSTED), again.stderr[-3000:]
        if again.returncode == DONE:
            break
        command = printed_command(again.stderr)  # with a larger budget again
    assert again.returncode == DONE
    assert_complete_and_fetched_once(box, tmp_path, seed, 2)
    assert set(re.findall(r"job (\S+): friends", first.stderr + again.stderr)) == {job}  # one job, continued


def test_ctrl_c_then_the_printed_command_continues_without_fetching_again(sandbox_factory, tmp_path: Path):
    box = sandbox_factory(*FAST, "--latency", "0.2")
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    env = crawl_env(box, tmp_path, demo_credentials("demo-user-1", "demo-user-2"))
    crawl = subprocess.Popen([sys.executable, "-m", "scrapy", "crawl", "friends", "-a", f"user_id={seed}", "-a", "depth=2",
                              "-s", "CONCURRENT_REQUESTS=2"], cwd=ROOT, env=env, text=True, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(list((tmp_path / "friend_ids").glob("*.jsonl"))) < 3:
            time.sleep(0.05)
        crawl.send_signal(signal.SIGINT)
        _, err = crawl.communicate(timeout=60)
    finally:
        if crawl.poll() is None:
            crawl.kill()
            crawl.communicate()
    assert crawl.returncode == INTERRUPTED, err[-3000:]
    last = err.rstrip().splitlines()[-1]
    assert last.startswith("tweetform: stopped before the end: the job is incomplete; `scrapy crawl friends")
    done = run(env, printed_command(last))
    assert done.returncode == DONE, done.stderr[-3000:]
    assert_complete_and_fetched_once(box, tmp_path, seed, 2)


def test_quota_learnt_before_a_stop_is_kept(sandbox_factory, tmp_path: Path):
    """The first run uses up its credential's window and is stopped while it waits; the continued run waits for
    the reset it already knows instead of probing the API (which answers a 429)."""
    box = sandbox_factory("--users", "3000", "--seed", "7", "--window", "10", "--limit", "/2/users/:id/following=3")
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    env = crawl_env(box, tmp_path, demo_credentials("demo-user-1"))
    crawl = subprocess.Popen([sys.executable, "-m", "scrapy", "crawl", "friends", "-a", f"user_id={seed}", "-a", "depth=2",
                              "-a", "max_users=8", "-s", "TWEETFORM_PROGRESS_INTERVAL=0.2"], cwd=ROOT, env=env, text=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert crawl.stderr is not None
        seen = ""
        while "waiting " not in seen:  # the window is used up: the crawl says it waits
            line = crawl.stderr.readline()
            assert line, seen[-3000:]
            seen += line
        crawl.send_signal(signal.SIGINT)
        _, err = crawl.communicate(timeout=60)
    finally:
        if crawl.poll() is None:
            crawl.kill()
            crawl.communicate()
    assert crawl.returncode == INTERRUPTED, (seen + err)[-3000:]
    assert box.counters()["statuses"].get("429", 0) == 0
    done = run(env, printed_command(err))
    assert done.returncode == DONE, done.stderr[-3000:]
    assert box.counters()["statuses"].get("429", 0) == 0  # today's code: the continued run's probe met a 429


def test_the_printed_continue_command_shows_no_secret_given_on_the_command_line() -> None:
    # The stop line prints the command that continues the job; a proxy password, a Redis password or
    # credentials given with -s must not reach the log with it (they are shown as *** to give again).
    from tweetform.commands.crawl import continue_command

    argv = ["scrapy", "friends", "-a", "user_id=12", "-a", "budget=2",
            "-s", 'TWEETFORM_PROXIES=["http://lab:pr0xy-Canary@127.0.0.1:1", "127.0.0.1:2"]',
            "-s", "REDIS_URL=redis://:redis-Canary@127.0.0.1:6379/0",
            "-sTWEETFORM_CREDENTIALS=[{\"alias\": \"a\", \"bearer_token\": \"bearer-Canary\"}]"]
    line = continue_command(argv, "friends-1")
    assert "Canary" not in line
    assert line.startswith("scrapy crawl friends -a user_id=12 ") and "-a job=friends-1" in line
    assert "http://lab:***@127.0.0.1:1" in line and "redis://:***@127.0.0.1:6379/0" in line
    assert line.endswith("(give the *** values again)")
    assert continue_command(["scrapy", "friends", "-a", "user_id=12"], "j") == "scrapy crawl friends -a user_id=12 -a job=j"
