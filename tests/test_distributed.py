"""Distributed mode: several worker processes, one Redis, the sandbox — nothing lost, nothing twice."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from conftest import ROOT
from crawling import bucket, demo_credentials, errors_of, ids_of

from tweetform import exitcodes
from tweetform.testing.servers import RedisServer

WORLD = ("--users", "3000", "--seed", "7", "--window", "1")


def worker_env(box: Any, redis_url: str, output: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWEETFORM_", "REDIS_", "ROTATING_PROXY_"))}
    env.update({
        "TWEETFORM_API_BASE": box.base,
        "TWEETFORM_CREDENTIALS": json.dumps(demo_credentials()),
        "TWEETFORM_OUTPUT_DIR": str(output),
        "REDIS_URL": redis_url,
        "TWEETFORM_HEARTBEAT": "0.3",
        "TWEETFORM_HEARTBEAT_TTL": "1.5",
        "TWEETFORM_QUOTA_RESET_MARGIN": "0.1",
        "TWEETFORM_BUDGET_USD": "unlimited",  # what is collected is checked here, not what may be spent
        "TWEETFORM_RETRY_BACKOFF": "0.05",
        "PYTHONWARNINGS": "error",
    })
    return env


STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def no_process_left_behind() -> Any:
    """A failing test must not leave a worker running into the next test's Redis."""
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
        # wait, not communicate: a test may have read and closed its pipe already (communicate() without a
        # timeout does, e.g. test_cascade's SIGKILLed worker, left here because that module has no such fixture)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def scrapy(env: dict[str, str], *args: str, **kw: Any) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "scrapy", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)
    STARTED.append(proc)
    return proc


def push(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "scrapy", "push", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


ALL_SPIDERS = "friends,followers,timeline,users,tweets,search"


def start_workers(env: dict[str, str], n: int, exit_when_idle: bool = True, *extra: str, spiders: str = ALL_SPIDERS) -> list[subprocess.Popen]:
    extra = (*extra, "-s", "TWEETFORM_EXIT_WHEN_IDLE=1") if exit_when_idle else extra
    return [scrapy(env, "worker", "--spiders", spiders, *extra) for _ in range(n)]


def wait_registered(redis_url: str, workers: list[subprocess.Popen], timeout: float = 120) -> None:
    """Until every worker process has its friends crawler registered in Redis."""
    r = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        infos = [json.loads(v) for v in r.hvals("tweetform:workers")]
        if {w.pid for w in workers} <= {i["pid"] for i in infos if i["spider"] == "friends"}:
            return
        time.sleep(0.1)
    raise AssertionError("workers did not register")


def wait_all(workers: list[subprocess.Popen], timeout: float = 180) -> list[str]:
    """Wait for every worker to finish; on a timeout, kill them all (a test leaves no process behind)."""
    logs = []
    try:
        for w in workers:
            out, _ = w.communicate(timeout=timeout)
            logs.append(out)
            assert w.returncode == 0, out[-3000:]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.communicate()
    return logs


def assert_network_equals_truth(box: Any, output: Path, seed: int, depth: int, name: str = "friend_ids", direction: str = "friends") -> None:
    expected = box.get(f"/_sandbox/truth/reachable?seeds={seed}&depth={depth}&direction={direction}")["ids"]
    pages = bucket(output, name)
    protected = {k for k, v in errors_of(output).items() if v == "protected"}
    assert set(pages) | protected == {str(u) for u in expected}
    truth_kind = "following" if direction == "friends" else "followers"
    all_ids = []
    for key, lines in pages.items():
        assert ids_of(lines) == box.truth(truth_kind, int(key)), key
        all_ids += [line["__tweetform"]["page_id"] for line in lines]
    assert len(all_ids) == len(set(all_ids)), "a page was written twice"


@pytest.fixture
def box(sandbox_factory):
    return sandbox_factory(*WORLD)


def test_three_workers_share_a_depth3_job(sandbox_factory, redis_url: str, tmp_path: Path):
    box = sandbox_factory(*WORLD, "--latency", "0.3")
    env = worker_env(box, redis_url, tmp_path)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    # few slots per worker, so the job's frontier stays queued and every worker finds work
    # the job is queued before the workers start: an idle worker exits at its second idle check (~5 s),
    # which a slow `scrapy push` on a loaded machine could miss
    push(env, "friends", "--user-id", str(seed), "--depth", "3", "--job", "net3")
    workers = start_workers(env, 3, True, "-s", "CONCURRENT_REQUESTS=2", "-s", "LOG_FILE=/dev/stderr")  # the stats dump
    logs = wait_all(workers)
    assert_network_equals_truth(box, tmp_path, seed, 3)
    worked = [log for log in logs if "'response_received_count'" in log]
    assert len(worked) >= 2  # the job was split across processes
    r = redis.Redis.from_url(redis_url)
    assert r.hlen(f"tweetform:friends:inflight") == 0


def test_a_network_job_claims_the_users_its_pages_find_in_the_push_of_their_first_page(box, redis_url: str, tmp_path: Path):
    """Without max_users, a page's users are claimed by the scheduler's push of their first pages (queue_push.lua
    "k"), not by seen_claim.lua before it: two workers crawl to depth 3, equal to the sandbox's truth, each user
    expanded once (the workers' tweetform/users/expanded add up to the users reached), and seen_claim.lua runs for
    the seed only (Redis's slow log, every command kept). Before: once per page of levels 1 and 2 (~15 here)."""
    import hashlib

    from tweetform.state.redis import scripts

    env = worker_env(box, redis_url, tmp_path)
    r = redis.Redis.from_url(redis_url)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    claim_sha = hashlib.sha1(scripts.source("seen_claim").encode()).hexdigest()
    saved = r.config_get("slowlog-*")
    r.config_set("slowlog-log-slower-than", 0)
    r.config_set("slowlog-max-len", 1_000_000)
    for name in scripts.names():  # loaded: a first EVALSHA answered NOSCRIPT would be logged too
        r.script_load(scripts.source(name))
    r.slowlog_reset()
    try:
        push(env, "friends", "--user-id", str(seed), "--depth", "3", "--job", "claimpush")
        logs = wait_all(start_workers(env, 2, True, "-s", "CONCURRENT_REQUESTS=2", "-s", "LOG_FILE=/dev/stderr",
                                      spiders="friends"))
        commands = [e["command"].split() for e in r.slowlog_get(1_000_000)]
    finally:
        r.config_set("slowlog-log-slower-than", saved["slowlog-log-slower-than"])
        r.config_set("slowlog-max-len", saved["slowlog-max-len"])
        r.slowlog_reset()
    assert_network_equals_truth(box, tmp_path, seed, 3)
    reached = box.get(f"/_sandbox/truth/reachable?seeds={seed}&depth=3&direction=friends")["ids"]
    pages_expanding = len(box.get(f"/_sandbox/truth/reachable?seeds={seed}&depth=2&direction=friends")["ids"])
    expanded = [int(m.group(1)) for log in logs for m in re.finditer(r"'tweetform/users/expanded': (\d+)", log)]
    assert sum(expanded) == len(reached) > pages_expanding > 10
    claims = [c for c in commands if c[:2] == [b"EVALSHA", claim_sha.encode()]]
    assert len(claims) == 1 and len(commands) > 1000  # the seed's claim; every command was logged


def holds_requests(r: redis.Redis, pid: int) -> bool:
    entries = [json.loads(v) for v in r.hvals("tweetform:friends:inflight")]
    return any(f"-{pid}-" in e["w"] for e in entries)


def test_killed_worker_loses_nothing(sandbox_factory, redis_url: str, tmp_path: Path):
    box = sandbox_factory(*WORLD, "--latency", "1.0")
    env = worker_env(box, redis_url, tmp_path)
    r = redis.Redis.from_url(redis_url)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    push(env, "friends", "--user-id", str(seed), "--depth", "3", "--job", "kill3")
    slow = ("-s", "CONCURRENT_REQUESTS=1")  # a long crawl: ~190 pages at 1 s each over 3 workers
    steady = start_workers(env, 2, True, *slow, spiders="friends")
    victims = start_workers(env, 1, False, *slow, spiders="friends")
    kills = 0
    try:
        for _ in range(3):
            deadline = time.monotonic() + 30
            holding = False
            while not holding and time.monotonic() < deadline:
                holding = holds_requests(r, victims[-1].pid)
                time.sleep(0 if holding else 0.05)
            if not holding:
                break
            victims[-1].send_signal(signal.SIGKILL)  # with requests in flight
            victims[-1].communicate()
            kills += 1
            victims += start_workers(env, 1, False, *slow, spiders="friends")
        assert kills >= 2  # several deaths with requests in flight
        box.set_faults(latency=0)  # the rest of the crawl need not be slow
        logs = wait_all(steady, timeout=240)
    finally:
        for w in steady + victims:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in steady + victims:
            try:
                w.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                w.kill()
                w.communicate()
    assert any("put back" in log for log in logs), "no worker reaped the killed worker's requests"
    assert_network_equals_truth(box, tmp_path, seed, 3)


def test_redis_restart_with_aof_loses_nothing(sandbox_factory, tmp_path: Path):
    server = RedisServer(appendonly=True)
    try:
        box = sandbox_factory(*WORLD, "--latency", "0.5")
        env = worker_env(box, server.url, tmp_path)
        seed = box.get("/_sandbox/examples")["ordinary"][0]
        push(env, "friends", "--user-id", str(seed), "--depth", "3", "--job", "aof3")
        workers = start_workers(env, 2, True, "-s", "CONCURRENT_REQUESTS=2", spiders="friends")
        r = redis.Redis.from_url(server.url)
        deadline = time.monotonic() + 60
        while r.hlen("tweetform:friends:inflight") == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        server.restart(down_for=2.0)  # mid-crawl, with requests queued and in flight
        box.set_faults(latency=0)  # the rest of the crawl need not be slow
        logs = wait_all(workers, timeout=240)
        assert any("Redis" in log and ("unreachable" in log or "heartbeat failed" in log) for log in logs)
        assert_network_equals_truth(box, tmp_path, seed, 3)
    finally:
        server.stop()


def test_a_job_message_whose_take_lost_its_answer_is_started_by_the_worker_holding_it(box, redis_url: str, tmp_path: Path):
    """The link to Redis breaks after a worker's LMOVE moved a job message into its processing list, before the answer
    came back (tests/cutting_proxy.py; the client makes no retry of its own): the message is in this live worker's
    list, which only a dead worker's is given back from. The worker starts it at its next take (it reads its list),
    so the job is crawled, not left there (an idle worker exited with the job never started)."""
    from cutting_proxy import CuttingProxy

    from tweetform.state.redis import scripts

    r = redis.Redis.from_url(redis_url)
    for name in scripts.names():  # loaded before: a SCRIPT LOAD through the proxy (a source naming LMOVE) is not cut
        r.script_load(scripts.source(name))
    r.close()
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    push(worker_env(box, redis_url, tmp_path), "friends", "--user-id", str(seed), "--job", "lost-take")
    proxy = CuttingProxy(int(redis_url.rsplit(":", 1)[1].split("/")[0]), "LMOVE")
    try:
        logs = wait_all(start_workers(worker_env(box, proxy.url, tmp_path), 1, spiders="friends"))
        assert proxy.cut(wait=0)
    finally:
        proxy.stop()
    assert ids_of(bucket(tmp_path, "friend_ids")[str(seed)]) == box.truth("following", seed), logs[0][-3000:]


def test_a_push_whose_answer_was_lost_says_the_job_may_be_queued_and_pushing_it_again_crawls_it_once(box, redis_url: str,
                                                                                                     tmp_path: Path):
    """The link to Redis breaks after scrapy push's RPUSH of the job message reached Redis, before the answer came back
    (tests/cutting_proxy.py): the job is queued, so the line says it may be (exit 5, unreachable, as README's table
    says), not only that Redis is unreachable (which invited a second push without --job: a second job). Pushing it
    again with --job, as the line says, crawls the job once: each page written once, the job done."""
    from cutting_proxy import CuttingProxy

    from tweetform.state.redis import keys, scripts

    r = redis.Redis.from_url(redis_url)
    for name in scripts.names():  # loaded before: a SCRIPT LOAD through the proxy (a source naming RPUSH) is not cut
        r.script_load(scripts.source(name))
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    proxy = CuttingProxy(int(redis_url.rsplit(":", 1)[1].split("/")[0]), "RPUSH")
    try:
        lost = subprocess.run([sys.executable, "-m", "scrapy", "push", "friends", "--user-id", str(seed), "--job", "lost-push"],
                              cwd=ROOT, env=worker_env(box, proxy.url, tmp_path), capture_output=True, text=True, timeout=60)
        assert proxy.cut(wait=0)
    finally:
        proxy.stop()
    assert lost.returncode == 5, lost.stderr  # unreachable
    said = lost.stderr.strip().splitlines()
    assert len(said) == 1 and "job lost-push" in said[0] and "may have been queued" in said[0], lost.stderr
    assert "push it again with --job lost-push" in said[0]
    assert r.llen(keys.jobs_inbox("friends")) == 1  # it was: the RPUSH ran
    push(worker_env(box, redis_url, tmp_path), "friends", "--user-id", str(seed), "--job", "lost-push")
    wait_all(start_workers(worker_env(box, redis_url, tmp_path), 1, spiders="friends"))
    pages = bucket(tmp_path, "friend_ids")[str(seed)]
    assert ids_of(pages) == box.truth("following", seed)  # each page once, every id
    assert r.hget(keys.job("lost-push"), "state") == b"done"
    r.close()


def test_malformed_messages_go_to_dead_letter(box, redis_url: str, tmp_path: Path):
    env = worker_env(box, redis_url, tmp_path)
    r = redis.Redis.from_url(redis_url)
    bad = ["{not json", json.dumps({"spider": "friends", "user_id": "12x"}), json.dumps({"spider": "friends", "user_id": "12", "bucket": "../x"}),
           json.dumps({"cmd": "CRAWL_EVERYTHING"}), json.dumps(["a", "list"])]
    for message in bad:
        r.rpush("tweetform:friends:start_urls", message)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    push(env, "friends", "--user-id", str(seed), "--job", "good")
    logs = wait_all(start_workers(env, 1))
    dead = [json.loads(x) for x in r.lrange("tweetform:deadletter", 0, -1)]
    assert [d["message"] for d in dead] == bad
    assert all(d["reason"] for d in dead)
    assert "not JSON" in dead[0]["reason"] and "'12x' is not an id" in dead[1]["reason"] and "bucket" in dead[2]["reason"]
    assert "unknown tweetf0rm command" in dead[3]["reason"]
    assert logs[0].count("job message refused") == len(bad)
    assert ids_of(bucket(tmp_path, "friend_ids")[str(seed)]) == box.truth("following", seed)


def test_legacy_commands_match_native_jobs(box, redis_url: str, tmp_path: Path):
    examples = box.get("/_sandbox/examples")
    seed, other = examples["ordinary"][0], examples["ordinary"][1]
    native, legacy = tmp_path / "native", tmp_path / "legacy"
    env = worker_env(box, redis_url, native)
    push(env, "friends", "--user-id", str(seed), "--depth", "2", "--job", "n1")
    push(env, "followers", "--user-id", str(other), "--data-type", "users", "--job", "n2")
    push(env, "timeline", "--user-id", str(other), "--job", "n3")
    push(env, "users", "--user-id", f"{seed},{other}", "--job", "n4")
    wait_all(start_workers(env, 1))
    env = worker_env(box, redis_url, legacy)
    push(env, "--legacy", json.dumps({"cmd": "CRAWL_FRIENDS", "user_id": seed, "data_type": "ids", "depth": 2, "bucket": "friend_ids"}))
    push(env, "--legacy", json.dumps({"cmd": "CRAWL_FOLLOWERS", "user_id": other, "data_type": "users", "depth": 1, "bucket": "followers"}))
    push(env, "--legacy", json.dumps({"cmd": "CRAWL_USER_TIMELINE", "user_id": other, "bucket": "timelines"}))
    push(env, "--legacy", json.dumps({"cmd": "GET_USERS_FROM_IDS", "user_ids": [seed, other], "bucket": "users"}))
    wait_all(start_workers(env, 1))
    for name in ("friend_ids", "followers", "timelines"):
        a, b = bucket(native, name), bucket(legacy, name)
        assert a.keys() == b.keys() and a
        for key in a:
            assert ids_of(a[key]) == ids_of(b[key])
    users_a = sorted(ids_of(next(iter(bucket(native, "users").values()))))
    users_b = sorted(ids_of(next(iter(bucket(legacy, "users").values()))))
    assert users_a == users_b == sorted([seed, other])


def admin(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scrapy", "admin", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_pause_resume_and_status(box, redis_url: str, tmp_path: Path):
    env = worker_env(box, redis_url, tmp_path)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    push(env, "friends", "--user-id", str(seed), "--depth", "2", "--job", "held")
    assert admin(env, "pause", "held").returncode == 0
    wait_all(start_workers(env, 1, spiders="friends"))
    r = redis.Redis.from_url(redis_url)
    assert bucket(tmp_path, "friend_ids") == {} and r.zcard("tweetform:job:held:parked") == 1
    assert admin(env, "resume", "held").returncode == 0
    wait_all(start_workers(env, 1, spiders="friends"))
    assert_network_equals_truth(box, tmp_path, seed, 2)
    status = subprocess.run([sys.executable, "-m", "scrapy", "status", "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    snap = json.loads(status.stdout)
    job = next(j for j in snap["jobs"] if j["job"] == "held")
    pages = sum(len(lines) for lines in bucket(tmp_path, "friend_ids").values())
    assert job["pages"] == pages == snap["buckets"]["friend_ids"] and job["state"] == "done"  # jobs finish (issue 10, feature 2)
    assert job["users_expanded"] == len(box.get(f"/_sandbox/truth/reachable?seeds={seed}&depth=2&direction=friends")["ids"])
    assert {q["lane"] for q in snap["quota"]} >= {"demo-user-1:user"}
    assert not any(secret in status.stdout for c in demo_credentials() for k, secret in c.items() if k != "alias" and k != "app_key")
    assert admin(env, "pause", "no-such-job").returncode == 2


def test_stop_node_hands_work_back(sandbox_factory, redis_url: str, tmp_path: Path):
    box = sandbox_factory(*WORLD, "--latency", "0.5")
    env = worker_env(box, redis_url, tmp_path)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    worker = start_workers(env, 1, False, "-s", "CONCURRENT_REQUESTS=2", spiders="friends")[0]
    wait_registered(redis_url, [worker])
    push(env, "friends", "--user-id", str(seed), "--depth", "3", "--job", "stopme")
    r = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 60
    while r.hlen("tweetform:friends:inflight") == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "asked to stop" in admin(env, "stop-node", "all").stdout
    out, _ = worker.communicate(timeout=60)
    assert worker.returncode == 0 and "stop requested through Redis" in out
    assert r.hlen("tweetform:friends:inflight") == 0  # handed back, not held
    wait_all(start_workers(env, 1, spiders="friends"))  # another worker finishes the job
    assert_network_equals_truth(box, tmp_path, seed, 3)


def test_status_shows_what_is_left_of_a_planned_job(box, redis_url: str, tmp_path: Path):
    env = worker_env(box, redis_url, tmp_path)
    seed = box.get("/_sandbox/examples")["many_followers"][0]
    out = push(env, "followers", "--user-id", str(seed), "--job", "planned", "--plan")
    pages_needed = len([1 for _ in range(0, len(box.truth("followers", seed)), 1000)])
    assert "plan:" in out

    def plan_of() -> dict:
        snap = json.loads(subprocess.run([sys.executable, "-m", "scrapy", "status", "--json"], cwd=ROOT, env=env,
                                         capture_output=True, text=True, timeout=60).stdout)
        return next(j for j in snap["jobs"] if j["job"] == "planned")["plan"]

    before = plan_of()
    assert before["requests"] >= pages_needed and before["left"]["requests"] == before["requests"]
    wait_all(start_workers(env, 1, spiders="followers"))
    pages = sum(len(lines) for lines in bucket(tmp_path, "follower_ids").values())
    after = plan_of()
    assert after["left"]["requests"] == max(0, before["requests"] - pages)
    assert "left of the plan" in subprocess.run([sys.executable, "-m", "scrapy", "status"], cwd=ROOT, env=env,
                                                capture_output=True, text=True, timeout=60).stdout


def test_job_started_by_a_killed_crawl_still_ends_done(sandbox_factory, redis_url: str, tmp_path: Path):
    """`scrapy crawl -a …` with REDIS_URL holds its job only while queuing its seeds: killed mid-crawl,
    a worker finishes the rest and the job ends done (it stayed running forever, held by the dead crawl)."""
    box = sandbox_factory(*WORLD, "--latency", "0.5")
    env = worker_env(box, redis_url, tmp_path)
    r = redis.Redis.from_url(redis_url)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    crawl = scrapy(env, "crawl", "friends", "-a", f"user_id={seed}", "-a", "depth=2", "-a", "job=heldcrawl", "-s", "CONCURRENT_REQUESTS=1")
    deadline = time.monotonic() + 60
    while not holds_requests(r, crawl.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert holds_requests(r, crawl.pid) and r.hget("tweetform:job:heldcrawl", "state") == b"running"
    crawl.send_signal(signal.SIGKILL)  # mid-crawl, before it was ever idle
    crawl.communicate(timeout=30)
    wait_all(start_workers(env, 1, True, spiders="friends"))
    done = subprocess.run([sys.executable, "-m", "scrapy", "wait", "heldcrawl", "--timeout", "60"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stdout + done.stderr
    assert r.hget("tweetform:job:heldcrawl", "state") == b"done"
    assert_network_equals_truth(box, tmp_path, seed, 2)


def test_distributed_crawl_exits_by_its_jobs_failed_pages_not_only_its_own(box, redis_url: str, tmp_path: Path):
    """`scrapy crawl -a …` with REDIS_URL runs a shared job: a page another worker failed for good is this job's failure too."""
    env = worker_env(box, redis_url, tmp_path)
    r = redis.Redis.from_url(redis_url)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    r.hset("tweetform:job:sharedfail:progress", "failed", 1)  # what another worker's errors record counted
    done = subprocess.run([sys.executable, "-m", "scrapy", "crawl", "friends", "-a", f"user_id={seed}", "-a", "job=sharedfail"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.hget("tweetform:job:sharedfail", "state") == b"done"
    assert done.returncode == exitcodes.PAGES_FAILED, done.stderr[-2000:]
    assert "1 page failed for good" in done.stderr.strip().splitlines()[-1]
    assert bucket(tmp_path, "friend_ids")[str(seed)]  # this process's own part was collected
