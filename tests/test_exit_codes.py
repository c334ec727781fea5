"""Exit status and one-line errors tell the truth (issue 11 §5), through real ``scrapy`` processes.

Each crawl runs against the sandbox; the codes are those of README's "Exit status"
table (tweetform/exitcodes.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from crawling import FULL_LOG, ROOT, bucket, crawl_env, demo_credentials, errors_of, run_crawl

from tweetform import exitcodes
from tweetform.testing.servers import RedisServer, free_port

WORLD = ("--users", "3000", "--seed", "7", "--window", "1")
FAST_RETRY = {"TWEETFORM_RETRY_BACKOFF": "0.05", "TWEETFORM_RETRY_BACKOFF_MAX": "0.2", "RETRY_TIMES": "1"}
TESTS = Path(__file__).resolve().parent


@pytest.mark.parametrize("reason,stats,code", [
    ("finished", {"downloader/response_count": 3}, exitcodes.DONE),
    ("finished", {"downloader/response_count": 3, "tweetform/pages/failed": 1}, exitcodes.PAGES_FAILED),
    ("finished", {"tweetform/pages/failed": 2}, exitcodes.UNREACHABLE),  # not one answer came back
    ("no_usable_credentials", {"tweetform/pages/failed": 2}, exitcodes.NO_CREDENTIALS),
    ("no_usable_proxies", {}, exitcodes.UNREACHABLE),
    ("budget_exhausted", {}, exitcodes.BUDGET_EXHAUSTED),
    ("cancelled", {}, exitcodes.CANCELLED),
    ("shutdown", {}, exitcodes.INTERRUPTED),
    ("closespider_pagecount", {}, exitcodes.DONE),
    ("closespider_errorcount", {}, exitcodes.ERROR),
    ("something new", {}, exitcodes.ERROR),
    (None, {}, exitcodes.ERROR),
])
def test_finish_reason_and_stats_give_the_status(reason, stats, code):
    assert exitcodes.for_crawl(reason, stats) == code


def test_every_credential_rejected_exits_no_credentials(sandbox_factory, tmp_path: Path):
    box = sandbox_factory(*WORLD)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    bad = [dict(c, oauth_token_secret="x" * 45) for c in demo_credentials("demo-user-1", "demo-user-2")]
    result = run_crawl(box, "friends", tmp_path, user_id=seed, credentials=bad, settings=FULL_LOG)
    assert "finish_reason': 'no_usable_credentials'" in result.stderr
    assert result.returncode == exitcodes.NO_CREDENTIALS == 4
    assert result.stderr.rstrip().splitlines()[-1].startswith("tweetform: every credential was rejected")
    assert bucket(tmp_path, "friend_ids") == {}


def test_api_that_never_answers_exits_unreachable(sandbox_factory, tmp_path: Path):
    box = sandbox_factory(*WORLD)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    box.post("/_sandbox/faults", {"drop": 1})  # every answer cut off: the API is reachable by TCP, never answers
    result = run_crawl(box, "friends", tmp_path, user_id=seed, credentials=demo_credentials("demo-user-1"), settings=FAST_RETRY)
    assert result.returncode == exitcodes.UNREACHABLE == 5, result.stderr[-2000:]
    assert "page failed for good" in result.stderr
    assert "page failed for good ()" not in result.stderr  # a failure without a message is named by its type
    last = result.stderr.rstrip().splitlines()[-1]
    assert last.startswith("tweetform: the API at ") and box.base in last and "never answered" in last
    assert errors_of(tmp_path) == {str(seed): "failed"}


def test_pages_failed_for_good_exit_pages_failed(sandbox_factory, tmp_path: Path):
    box = sandbox_factory(*WORLD)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    box.post("/_sandbox/faults", {"error": 1})  # every answer a 5xx: the page fails for good after its retries
    result = run_crawl(box, "friends", tmp_path, user_id=seed, credentials=demo_credentials("demo-user-1"), settings=FAST_RETRY)
    assert result.returncode == exitcodes.PAGES_FAILED == 3, result.stderr[-2000:]
    assert result.stderr.rstrip().splitlines()[-1].startswith("tweetform: 1 page failed for good")
    assert errors_of(tmp_path) == {str(seed): "failed"}


def test_complete_crawl_exits_zero_even_with_protected_accounts(sandbox_factory, tmp_path: Path):
    box = sandbox_factory(*WORLD)
    protected = box.get("/_sandbox/examples")["protected"][0]
    result = run_crawl(box, "friends", tmp_path, user_id=protected, credentials=demo_credentials("demo-user-1"))
    assert result.returncode == exitcodes.DONE, result.stderr[-2000:]
    assert errors_of(tmp_path) == {str(protected): "protected"}  # data about the account, not a failure


def test_callback_that_raises_is_a_failed_page_and_the_crawl_goes_on(sandbox_factory, tmp_path: Path):
    """A bug in a callback (a tests-only spider raises on every third level-2 user)."""
    from spiders_that_raise import raises_for

    box = sandbox_factory(*WORLD)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    env = crawl_env(box, tmp_path, demo_credentials("demo-user-1", "demo-user-2"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "scrapy", "crawl", "friends_that_raise", "-L", "INFO", "-s",
           "SPIDER_MODULES=tweetform.spiders,spiders_that_raise", "-a", f"user_id={seed}", "-a", "depth=2", "-a", "max_users=12",
           "-s", f"LOG_FILE={FULL_LOG['LOG_FILE']}"]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    expected = box.get(f"/_sandbox/truth/reachable?seeds={seed}&depth=2&direction=friends&max_users=12")["ids"]
    raising = [u for u in expected if u != seed and raises_for(u)]
    assert raising, "the world has no user for the spider to raise on"
    # every expanded user's first page is written; each raising one is also recorded as failed, with the class
    records = [line for lines in bucket(tmp_path, "errors").values() for line in lines]
    failed = {r["id"]: r for r in records if r["reason"] == "failed"}
    assert set(failed) == {str(u) for u in raising}
    assert all(r["exception"] == "RuntimeError" and r["message"].startswith("RuntimeError while handling the page: a bug in a callback") for r in failed.values())
    pages = bucket(tmp_path, "friend_ids")
    protected = {r["id"] for r in records if r["reason"] == "protected"}
    assert set(pages) | protected == {str(u) for u in expected}  # the crawl went on past the failures
    assert result.returncode == exitcodes.PAGES_FAILED, result.stderr[-3000:]
    assert f"'tweetform/pages/failed': {len(raising)}" in result.stderr
    assert f"'tweetform/pages/failed/callback/RuntimeError': {len(raising)}" in result.stderr
    # no loop: every request the sandbox served became exactly one written page or one error record
    served = sum(box.counters()["statuses"].values())
    assert served == sum(len(v) for v in pages.values()) + len(protected)


# --- Redis that cannot be reached: one line, no password, non-zero --------------------------------

@pytest.mark.parametrize("command", [
    ("status",), ("push", "friends", "--user-id", "12"), ("admin", "list-nodes"), ("worker",), ("crawl", "friends"),
    ("crawl", "friends", "-a", "user_id=12"), ("wait", "some-job"), ("collect",),
], ids=lambda c: "-".join(c))
def test_unreachable_redis_is_one_line_without_the_password(command: tuple[str, ...], tmp_path: Path):
    url = f"redis://:Canary-Redis-Pass-1@127.0.0.1:{free_port()}/0"  # nothing listens there
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWEETFORM_", "REDIS_"))}
    env.update(REDIS_URL=url, TWEETFORM_CREDENTIALS=json.dumps(demo_credentials("demo-user-1")), TWEETFORM_OUTPUT_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "scrapy", *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert done.returncode == exitcodes.UNREACHABLE, lines
    assert len(lines) == 1 and lines[0].startswith("tweetform: Redis at redis://:***@127.0.0.1:") and "unreachable" in lines[0]
    assert "Canary-Redis-Pass-1" not in done.stdout + done.stderr
    assert list(tmp_path.iterdir()) == []


def test_wrong_redis_password_is_one_line(tmp_path: Path):
    server = RedisServer(password="right-one")
    port = server.port
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TWEETFORM_", "REDIS_"))}
        env["REDIS_URL"] = server.url_with_password("Canary-Wrong-Pass")
        done = subprocess.run([sys.executable, "-m", "scrapy", "status"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    finally:
        server.stop()
    assert done.returncode == exitcodes.UNREACHABLE
    assert done.stderr.strip() == f"tweetform: Redis at redis://:***@127.0.0.1:{port}/0 refused the password or user name (AuthenticationError)"
    assert "Canary-Wrong-Pass" not in done.stdout + done.stderr


def test_callback_that_raises_in_a_worker_is_acknowledged_not_handed_out_again(sandbox_factory, redis_url: str, tmp_path: Path):
    """Distributed: a raising page is recorded once and acked; the worker goes idle and exits (no loop)."""
    from spiders_that_raise import raises_for

    from tweetform.state.redis import keys

    box = sandbox_factory(*WORLD)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    r = redis.Redis.from_url(redis_url)
    r.rpush(keys.jobs_inbox("friends_that_raise"), json.dumps({"user_id": str(seed), "depth": 2, "max_users": 12, "job": "raises"}))
    env = crawl_env(box, tmp_path, demo_credentials("demo-user-1", "demo-user-2"))
    env["REDIS_URL"] = redis_url
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
    worker = subprocess.Popen([sys.executable, "-m", "scrapy", "worker", "--spiders", "friends_that_raise", "-s",
                               "SPIDER_MODULES=tweetform.spiders,spiders_that_raise", "-s", "TWEETFORM_EXIT_WHEN_IDLE=1",
                               "-s", "TWEETFORM_HEARTBEAT_TTL=3"],
                              cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = worker.communicate(timeout=90)  # before the fix: the raising requests stay in flight and the worker never idles
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    assert worker.returncode == exitcodes.DONE, out[-3000:]
    expected = box.get(f"/_sandbox/truth/reachable?seeds={seed}&depth=2&direction=friends&max_users=12")["ids"]
    raising = {str(u) for u in expected if u != seed and raises_for(u)}
    records = [line for lines in bucket(tmp_path, "errors").values() for line in lines]
    assert sorted(rec["id"] for rec in records if rec["reason"] == "failed") == sorted(raising)  # each once
    assert r.hlen(keys.in_flight("friends_that_raise")) == 0
    served = sum(box.counters()["statuses"].values())
    protected = sum(1 for rec in records if rec["reason"] == "protected")
    assert served == sum(len(v) for v in bucket(tmp_path, "friend_ids").values()) + protected  # nothing fetched twice


def test_deep_crawl_without_max_users_warns_with_the_plans_estimate(sandbox_factory, redis_url: str, tmp_path: Path):
    from scrapy.settings import Settings

    from tweetform.planning import plan_job
    from tweetform.spiders.network import FriendsSpider

    box = sandbox_factory(*WORLD)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    creds = demo_credentials("demo-user-1")
    settings = Settings({"TWEETFORM_API_BASE": box.base, "TWEETFORM_CREDENTIALS": creds})
    est = plan_job(settings, FriendsSpider.parse_arguments({"user_id": str(seed), "depth": "3"}), sample=0)[0]
    expected = f"tweetform: warning: depth=3 without max_users expands every account reachable in 2 steps: the plan estimates {est.users:,} users"
    result = run_crawl(box, "friends", tmp_path, user_id=seed, depth=3, credentials=creds, settings={"CLOSESPIDER_PAGECOUNT": "1"})
    assert result.returncode == exitcodes.DONE, result.stderr[-2000:]  # a warning, not a refusal
    assert [line for line in result.stderr.splitlines() if "warning: depth" in line][0].startswith(expected)
    capped = run_crawl(box, "friends", tmp_path / "capped", user_id=seed, depth=3, max_users=3, credentials=creds)
    assert capped.returncode == exitcodes.DONE and "warning: depth" not in capped.stderr
    env = crawl_env(box, tmp_path / "push", creds)
    env["REDIS_URL"] = redis_url
    pushed = subprocess.run([sys.executable, "-m", "scrapy", "push", "friends", "--user-id", str(seed), "--depth", "3"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert pushed.returncode == 0 and pushed.stderr.startswith(expected) and "pushed job" in pushed.stdout


def test_worker_whose_every_credential_is_rejected_exits_no_credentials(sandbox_factory, redis_url: str, tmp_path: Path):
    from tweetform.state.redis import keys

    box = sandbox_factory(*WORLD)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    r = redis.Redis.from_url(redis_url)
    r.rpush(keys.jobs_inbox("friends"), json.dumps({"user_id": str(seed), "job": "rejected"}))
    bad = [dict(c, oauth_token_secret="x" * 45) for c in demo_credentials("demo-user-1")]
    env = crawl_env(box, tmp_path, bad)
    env["REDIS_URL"] = redis_url
    done = subprocess.run([sys.executable, "-m", "scrapy", "worker", "--spiders", "friends", "-s", "TWEETFORM_EXIT_WHEN_IDLE=1",
                           "-s", f"LOG_FILE={FULL_LOG['LOG_FILE']}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)
    assert done.returncode == exitcodes.NO_CREDENTIALS, done.stderr[-3000:]
    assert "finish_reason': 'no_usable_credentials'" in done.stderr
    assert bucket(tmp_path, "friend_ids") == {}


def test_crawl_stopped_by_ctrl_c_exits_interrupted(sandbox_factory, tmp_path: Path):
    import signal

    box = sandbox_factory(*WORLD, "--latency", "0.3")
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    env = crawl_env(box, tmp_path, demo_credentials("demo-user-1", "demo-user-2"))
    crawl = subprocess.Popen([sys.executable, "-m", "scrapy", "crawl", "friends", "-a", f"user_id={seed}", "-a", "depth=2",
                              "-a", "max_users=40", "-s", "CONCURRENT_REQUESTS=2", "-s", f"LOG_FILE={FULL_LOG['LOG_FILE']}"],
                             cwd=ROOT, env=env, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(list((tmp_path / "friend_ids").glob("*.jsonl"))) < 2:
            time.sleep(0.05)
        crawl.send_signal(signal.SIGINT)  # what Ctrl-C sends
        _, err = crawl.communicate(timeout=60)
    finally:
        if crawl.poll() is None:
            crawl.kill()
            crawl.communicate()
    assert "finish_reason': 'shutdown'" in err
    assert crawl.returncode == exitcodes.INTERRUPTED, err[-2000:]
    assert err.rstrip().splitlines()[-1].startswith("tweetform: stopped before the end")


def test_a_page_that_cannot_be_written_is_not_a_success(sandbox_factory, tmp_path: Path):
    box = sandbox_factory(*WORLD)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    (tmp_path / "friend_ids").write_text("a file where the bucket directory should be\n")
    result = run_crawl(box, "friends", tmp_path, user_id=seed, credentials=demo_credentials("demo-user-1"), settings=FULL_LOG)
    assert result.returncode == exitcodes.ERROR, result.stderr[-2000:]
    assert "'tweetform/items/not_written': 1" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1] == f"tweetform: 1 page(s) could not be written to {tmp_path} (see the errors above)"


def test_worker_processes_are_not_restarted_into_a_loop(sandbox_factory, redis_url: str, tmp_path: Path):
    """--processes N restarts a crashed process, not one that ended idle or whose credentials were all rejected."""
    from tweetform.state.redis import keys

    box = sandbox_factory(*WORLD)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    r = redis.Redis.from_url(redis_url)
    env = crawl_env(box, tmp_path, demo_credentials("demo-user-1"))
    env["REDIS_URL"] = redis_url
    cmd = [sys.executable, "-m", "scrapy", "worker", "--processes", "2", "--spiders", "friends", "-s", "TWEETFORM_EXIT_WHEN_IDLE=1"]
    r.rpush(keys.jobs_inbox("friends"), json.dumps({"user_id": str(seed), "job": "fine"}))
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == exitcodes.DONE and "starting another" not in done.stderr, done.stderr[-2000:]
    assert bucket(tmp_path, "friend_ids")[str(seed)]
    r.rpush(keys.jobs_inbox("friends"), json.dumps({"user_id": str(seed), "job": "rejected"}))
    env["TWEETFORM_CREDENTIALS"] = json.dumps([dict(c, oauth_token_secret="x" * 45) for c in demo_credentials("demo-user-1")])
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == exitcodes.NO_CREDENTIALS, done.stderr[-2000:]
    assert "starting another" not in done.stderr and "ended (no_credentials); not restarted" in done.stderr
