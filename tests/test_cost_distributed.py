"""A budget held across workers: three processes on one job, one Redis, the sandbox's ledger as the judge."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from test_distributed import (ROOT, WORLD, assert_network_equals_truth, no_process_left_behind, push, start_workers,  # noqa: F401
                              wait_all, worker_env)


def admin(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scrapy", "admin", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


def test_three_workers_hold_one_budget_then_continue(sandbox_factory, redis_url: str, tmp_path: Path):
    box = sandbox_factory(*WORLD, "--latency", "0.05")
    env = worker_env(box, redis_url, tmp_path)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    # the job first: an idle-exiting worker started before a slow push (a loaded machine) could exit with nothing done
    push(env, "friends", "--user-id", str(seed), "--depth", "3", "--job", "costly", "--budget", "1.5")
    workers = start_workers(env, 3, True, "-s", "CONCURRENT_REQUESTS=4")
    logs = wait_all(workers)
    bill = box.get("/_sandbox/billing")
    # push looked the deep job's seed up for its warning (one User read, not the job's): the job's pages are follows
    [(app, account)] = bill["apps"].items()
    billed = round(account["resources"]["follow"] * 0.010, 6)
    assert 1.0 < billed <= 1.5  # spent up to the budget, never past it
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    assert r.hget("tweetform:job:costly", "state") == "budget_exhausted"
    money = r.hgetall("tweetform:job:costly:budget")
    assert int(money["spent"]) == round(billed * 1_000_000) and r.zcard("tweetform:job:costly:budget:reserved") == 0
    assert r.zcard("tweetform:job:costly:parked") > 0  # what is left undone is kept
    assert sum("stopped at its budget" in log for log in logs) >= 1
    # scrapy status: what the job spent, per app, as the ledger billed it
    snap = json.loads(subprocess.run([sys.executable, "-m", "scrapy", "status", "--json"], cwd=ROOT, env=env,
                                     capture_output=True, text=True, timeout=60).stdout)
    [job] = [j for j in snap["jobs"] if j["job"] == "costly"]
    assert job["money"]["spent_usd"] == billed and job["money"]["budget_usd"] == 1.5
    assert job["money"]["apps"] == {app: pytest.approx(billed)}
    text = subprocess.run([sys.executable, "-m", "scrapy", "status"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60).stdout
    assert f"spent ${billed:,.2f} of a $1.50 budget" in text
    more = admin(env, "budget", "costly", "+1000")
    assert more.returncode == 0 and "it continues" in more.stdout, more.stderr
    workers = start_workers(env, 3, True, "-s", "CONCURRENT_REQUESTS=4")
    wait_all(workers)
    assert r.hget("tweetform:job:costly", "state") != "budget_exhausted"
    assert_network_equals_truth(box, tmp_path, seed, 3)  # complete, and no page written twice
    bad = admin(env, "budget", "costly", "lots")
    assert bad.returncode == 2 and bad.stderr.strip() == "tweetform: the amount must be US dollars to add, like +5, not 'lots'"


def test_a_killed_workers_reservations_lapse(redis_url: str, monkeypatch):
    """Reservations nobody settles (their worker was killed) stop holding the budget after a while."""
    import time

    from tweetform.cost import redis_budget

    monkeypatch.setattr(redis_budget, "RESERVATION_TTL", 0.3)
    r = redis.Redis.from_url(redis_url)
    killed, alive = redis_budget.RedisBudget(r), redis_budget.RedisBudget(r)
    assert killed.reserve("j", 1_500_000, 1_000_000, ("dead", 1))
    assert not alive.reserve("j", 1_500_000, 1_000_000, ("live", 1))  # held by the other worker
    alive.settle("j", 0, 200_000, {"app": 200_000})  # an unreserved page's cost still counts
    time.sleep(0.4)
    assert alive.reserve("j", 1_500_000, 1_000_000, ("live", 2))  # the dead worker's reservation lapsed
    alive.settle("j", 1_000_000, 600_000, {"app": 600_000}, ("live", 2))
    assert redis_budget.spend_of(r, "j") == {"budget_usd": 1.5, "spent_usd": 0.8, "reserved_usd": 0.0, "apps": {"app": 0.8}}


def test_usage_capped_parks_a_distributed_job_until_resumed(sandbox_factory, redis_url: str, tmp_path: Path):
    box = sandbox_factory(*WORLD, "--credits", "1.2")  # the job costs about $1.9: two runs of credits
    env = worker_env(box, redis_url, tmp_path)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    push(env, "friends", "--user-id", str(seed), "--depth", "2", "--job", "capped")  # before the idle-exiting workers
    workers = start_workers(env, 2, True, "-s", "CONCURRENT_REQUESTS=4", "-s", "LOG_FILE=/dev/stderr")  # the stats dump
    logs = wait_all(workers)  # the workers go idle: the job's requests are parked, not retried every second
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    assert r.hget("tweetform:job:capped", "state") == "budget_exhausted" and r.zcard("tweetform:job:capped:parked") > 0
    assert any("stopped: the API's usage cap (Usage cap exceeded: no credits left)" in log for log in logs)
    assert all("Dumping Scrapy stats" in log for log in logs)
    assert not any("'tweetform/quota/rate_limited'" in log for log in logs)
    from tweetform.cost.redis_budget import spend_of

    money = spend_of(redis.Redis.from_url(redis_url), "capped")  # a job without a budget: its spend is recorded too
    assert money["budget_usd"] is None and money["spent_usd"] == pytest.approx(box.get("/_sandbox/billing")["total_usd"])
    box.post("/_sandbox/billing/reset")  # credits bought
    assert admin(env, "resume", "capped").returncode == 0
    wait_all(start_workers(env, 2, True, "-s", "CONCURRENT_REQUESTS=4"))
    assert_network_equals_truth(box, tmp_path, seed, 2)


def test_two_workers_of_two_apps_across_midnight_record_the_sandboxs_bill(sandbox_factory, redis_url: str, tmp_path: Path):
    """Overlapping follow lists fetched by two workers with the credentials of two apps, the API's day changing
    mid-job: what the job records it spent, per app, is the sandbox's bill (each worker remembers the ids Redis
    said are billed and asks only about the others: that must never skip an id another app or day is billed for)."""
    import threading
    import time

    from crawling import bucket, demo_credentials, ids_of

    from tweetform.cost.redis_budget import spend_of

    box = sandbox_factory(*WORLD, "--limit", "/2/users/:id/following=1")
    box.reset()
    env = worker_env(box, redis_url, tmp_path)
    env["TWEETFORM_CREDENTIALS"] = json.dumps(demo_credentials("demo-user-1", "demo-app-1", "demo-user-5", "demo-app-2"))
    ordinary = box.get("/_sandbox/examples")["ordinary"]
    push(env, "friends", "--user-id", f"{ordinary[0]},{ordinary[1]}", "--depth", "2", "--max-users", "20", "--job", "two-apps")
    midnight = threading.Event()

    def advance_after_some_pages() -> None:
        while not midnight.is_set():
            if sum(c["served"] for c in box.counters()["limits"] if c["endpoint"] == "/2/users/:id/following") >= 5:
                box.post("/_sandbox/clock", {"advance": 86_400})
                midnight.set()
            time.sleep(0.02)

    watcher = threading.Thread(target=advance_after_some_pages, daemon=True)
    watcher.start()
    try:
        wait_all(start_workers(env, 2, True, "-s", "CONCURRENT_REQUESTS=2"))
    finally:
        midnight.set()
        watcher.join()
    bill = box.get("/_sandbox/billing")
    assert len(bill["apps"]) == 2 and any(len(account["days"]) == 2 for account in bill["apps"].values()), bill
    money = spend_of(redis.Redis.from_url(redis_url), "two-apps")
    assert money["apps"] == {app: pytest.approx(account["usd"]) for app, account in bill["apps"].items()}
    assert money["spent_usd"] == pytest.approx(bill["total_usd"])
    listed = [i for pages in bucket(tmp_path, "friend_ids").values() for i in ids_of(pages)]
    billed = sum(account["resources"]["follow"] for account in bill["apps"].values())
    assert len(set(listed)) <= billed < len(listed)  # ids met again the same day and app were not billed again


def test_a_job_whose_last_acknowledgement_carries_its_billing_shows_its_whole_spend(sandbox_factory, redis_url: str, tmp_path: Path):
    """A page's billed-ids call rides the round trip of its request's acknowledgement (cost/ledger.py charge_later),
    and the last acknowledgement ends the job: once the job has ended, its spend in Redis, `scrapy status` and the
    worker's stats show every resource the sandbox billed, nothing left reserved."""
    from tweetform.cost.redis_budget import spend_of

    box = sandbox_factory(*WORLD)
    box.reset()
    env = worker_env(box, redis_url, tmp_path)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    push(env, "friends", "--user-id", str(seed), "--depth", "2", "--max-users", "6", "--job", "small", "--budget", "5")
    [log] = wait_all(start_workers(env, 1, True, "-s", "CONCURRENT_REQUESTS=2", "-s", "LOG_FILE=/dev/stderr"))
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    assert r.hget("tweetform:job:small", "state") == "done"
    bill = box.get("/_sandbox/billing")
    assert bill["total_usd"] > 0
    money = spend_of(redis.Redis.from_url(redis_url), "small")
    assert money == {"budget_usd": 5.0, "spent_usd": pytest.approx(bill["total_usd"]), "reserved_usd": 0.0,
                     "apps": {app: pytest.approx(account["usd"]) for app, account in bill["apps"].items()}}
    snap = json.loads(subprocess.run([sys.executable, "-m", "scrapy", "status", "--json"], cwd=ROOT, env=env,
                                     capture_output=True, text=True, timeout=60).stdout)
    [job] = [j for j in snap["jobs"] if j["job"] == "small"]
    assert job["money"]["spent_usd"] == pytest.approx(bill["total_usd"])
    assert f"'tweetform/cost/usd': {bill['total_usd']}" in log or f"'tweetform/cost/usd': {round(bill['total_usd'], 6)}" in log
    assert "could not be billed" not in log
