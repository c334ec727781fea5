"""Safe by default (issue 16): no crawl runs without a spending limit, and the plan says what it cost.

Each test runs real commands against the sandbox, which bills like the API (its ledger is the truth)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from crawling import ROOT, crawl_env, run_crawl

from tweetform.cost import DEFAULT_BUDGET_USD
from tweetform.exitcodes import BAD_INPUT, BUDGET_EXHAUSTED, DONE

FAST = ("--users", "3000", "--seed", "7", "--window", "1")
SEED = 12  # 1,702 followers in this world: $17.02 for its list alone


@pytest.fixture
def box(sandbox_factory):
    return sandbox_factory(*FAST)


def scrapy(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scrapy", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def user_env(box, output: Path, **extra: str) -> dict[str, str]:
    """A user's environment: no budget setting at all (the harness's ``unlimited`` taken out)."""
    env = crawl_env(box, output)
    env.pop("TWEETFORM_BUDGET_USD")
    env.update(extra)
    return env


def test_a_crawl_that_sets_no_budget_stops_at_the_default_one(box, tmp_path: Path):
    """Today's code spent $17.02 here (no budget, no guard); the default budget stops it at $5."""
    env = user_env(box, tmp_path)
    done = scrapy(env, "crawl", "followers", "-a", f"user_id={SEED}", "-a", "job=nobudget", "-L", "INFO")
    assert done.returncode == BUDGET_EXHAUSTED, done.stderr[-3000:]
    billed = box.get("/_sandbox/billing")["total_usd"]
    assert 0 < billed <= DEFAULT_BUDGET_USD
    [first] = [line for line in done.stderr.splitlines() if "job nobudget:" in line]
    assert "budget $5.00 (default: TWEETFORM_BUDGET_USD; -a budget=USD or budget=unlimited to change it)" in first
    manifest = json.loads((tmp_path / "_jobs" / "nobudget.json").read_text())
    assert manifest["budget_usd"] == DEFAULT_BUDGET_USD and manifest["spent_usd"] == pytest.approx(billed)


def test_only_unlimited_lifts_the_budget(box, tmp_path: Path):
    env = user_env(box, tmp_path / "a")
    done = scrapy(env, "crawl", "followers", "-a", f"user_id={SEED}", "-a", "budget=unlimited", "-a", "job=free", "-L", "INFO")
    assert done.returncode == DONE, done.stderr[-3000:]
    assert box.get("/_sandbox/billing")["total_usd"] == pytest.approx(17.02)
    assert "no budget (budget=unlimited)" in done.stderr
    box.reset()
    done = scrapy(user_env(box, tmp_path / "b", TWEETFORM_BUDGET_USD="unlimited"), "crawl", "followers", "-a", f"user_id={SEED}")
    assert done.returncode == DONE, done.stderr[-3000:]
    # 0 used to mean "no budget": now it is bad input, one line, nothing fetched
    box.reset()
    for bad in ("0", "-1", "lots"):
        done = scrapy(user_env(box, tmp_path / "c", TWEETFORM_BUDGET_USD=bad), "crawl", "followers", "-a", f"user_id={SEED}")
        assert done.returncode == BAD_INPUT, done.stderr
        assert done.stderr.strip().splitlines() == [
            f"tweetform: environment variable TWEETFORM_BUDGET_USD must be more than 0, not {bad}" if bad != "lots" else
            "tweetform: TWEETFORM_BUDGET_USD must be an amount in US dollars, like 5 or 2.50, or unlimited, not 'lots'"]
    assert box.get("/_sandbox/billing")["total_usd"] == 0


def test_the_test_harness_sets_its_budget_explicitly(box, tmp_path: Path):
    """The same crawl through run_crawl (the harness says budget=unlimited) collects everything."""
    done = run_crawl(box, "followers", tmp_path, user_id=SEED)
    assert done.returncode == DONE, done.stderr[-3000:]
    assert box.get("/_sandbox/billing")["total_usd"] == pytest.approx(17.02)


def test_plan_says_what_its_own_requests_cost(box):
    env = user_env(box, Path("/nonexistent"))
    done = scrapy(env, "plan", "followers", "-a", f"user_id={SEED}", "-a", "depth=2", "--json")
    assert done.returncode == DONE, done.stderr
    plan = json.loads(done.stdout)
    billed = box.get("/_sandbox/billing")
    assert billed["total_usd"] > 1.0  # the look-up (1 user) and the sample (100 follows)
    assert plan["plan_spent_usd"] == pytest.approx(billed["total_usd"])
    assert plan["plan_spent_usd_by_app"] == {app: pytest.approx(v["usd"]) for app, v in billed["apps"].items()}
    box.reset()
    text = scrapy(env, "plan", "followers", "-a", f"user_id={SEED}", "-a", "depth=2")
    assert f"this plan's own requests cost ${billed['total_usd']:.2f} (101 resource(s), billed to demo-app-1)" in text.stdout


def test_push_plan_counts_the_plan_in_the_jobs_spend(box, tmp_path: Path, redis_url: str):
    import redis

    from tweetform.cost.redis_budget import spend_of

    env = user_env(box, tmp_path, REDIS_URL=redis_url)
    done = scrapy(env, "push", "followers", "--user-id", str(SEED), "--depth", "2", "--job", "planned", "--plan")
    assert done.returncode == DONE, done.stderr
    billed = box.get("/_sandbox/billing")["total_usd"]
    assert billed > 1.0 and "counted in the job's spend" in done.stdout
    money = spend_of(redis.Redis.from_url(redis_url), "planned")
    assert money["spent_usd"] == pytest.approx(billed) and money["apps"] == {"demo-app-1": pytest.approx(billed)}
