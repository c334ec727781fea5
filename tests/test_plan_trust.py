"""A plan you can trust (issue 16 §2): it never extrapolates from a sample that failed, states its basis and a
range, and the range holds what the sandbox then bills."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from crawling import ROOT, demo_credentials, run_crawl

from tweetform.exitcodes import DONE, QUOTA_USED_UP

WORLD = ("--users", "3000", "--seed", "7")
# one list request per 30 s: long enough that two plan processes in a row meet the same window, however loaded the machine
LIMITED = (*WORLD, "--window", "30", "--limit", "/2/users/:id/following=1")
# one per 10 s, for a plan process followed by a plan in the test's own process (no start-up between them):
# the plan that waits for the reset then waits ~10 s, not ~30
SHORT = (*WORLD, "--window", "10", "--limit", "/2/users/:id/following=1")


def plan(box, creds: list[dict], *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "TWEETFORM_API_BASE": box.base, "TWEETFORM_CREDENTIALS": json.dumps(creds),
           "PYTHONWARNINGS": "error"}
    return subprocess.run([sys.executable, "-m", "scrapy", "plan", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def plan_here(box, creds: list[dict], capsys, spargs: list[str], wait: float) -> tuple[int, str, str]:
    """``scrapy plan friends -a … --json --wait W`` in this process (the CLI's code path, minus its start-up)."""
    import argparse

    from scrapy.settings import Settings

    from tweetform.commands.plan import Command

    settings = Settings()
    settings.setmodule("tweetform.settings")
    settings.setdict({"TWEETFORM_API_BASE": box.base, "TWEETFORM_CREDENTIALS": creds}, priority="cmdline")
    command = Command()
    command.settings = settings
    capsys.readouterr()
    command.run(["friends"], argparse.Namespace(spargs=spargs, json=True, sample=100, budget=None, wait=wait))
    out, err = capsys.readouterr()
    return command.exitcode, out, err


def rate_limited(box) -> int:
    return box.counters()["statuses"].get("429", 0)


def test_plan_under_an_exhausted_credential_says_so_and_after_the_reset_matches_the_bill(sandbox_factory, tmp_path: Path, capsys):
    """Today's code answered the second plan from nothing: its sample met a 429 and it extrapolated from the seeds,
    saying only 'no sample of level 2' (on a real crawl: $7,298 became $27,531,862.94)."""
    box = sandbox_factory(*SHORT)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    one = demo_credentials("demo-user-1")
    args = ("friends", "-a", f"user_id={seed}", "-a", "depth=2", "--json")
    first = plan(box, one, *args)
    assert first.returncode == DONE, first.stderr
    # the window's one request went to the sample: the same plan now, without waiting, cannot be made
    code, out, err = plan_here(box, one, capsys, [f"user_id={seed}", "depth=2"], wait=0)
    assert code == QUOTA_USED_UP, err
    assert out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("tweetform: the estimate is not possible now: every credential's quota for "
                          "/2/users/:id/following is used up until ")
    assert rate_limited(box) == 1  # the one probe that found out
    # allowed to wait (default: up to a minute), it waits for the reset instead of asking again and again
    waited = plan(box, one, *args)
    assert waited.returncode == DONE, waited.stderr
    assert rate_limited(box) <= 2  # at most one more probe (if the window had not reset yet), then the wait
    est = json.loads(waited.stdout)
    assert est["sampled"] > 0 and "extrapolated from a sample of" in est["basis"]
    low, high = est["usd_range"]
    assert low <= est["usd"] <= high
    # the crawl, on the same world without the tight limit (a crawl at one request per 8 s would take minutes)
    same_world = sandbox_factory(*WORLD, "--window", "1")
    crawl = run_crawl(same_world, "friends", tmp_path, user_id=seed, depth=2)
    assert crawl.returncode == DONE, crawl.stderr[-3000:]
    billed = same_world.get("/_sandbox/billing")["total_usd"]
    assert low <= billed <= high, (low, billed, high)


def test_plan_uses_another_lane_when_one_is_used_up(sandbox_factory):
    box = sandbox_factory(*LIMITED)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    two = demo_credentials("demo-user-1", "demo-user-2")
    args = ("friends", "-a", f"user_id={seed}", "-a", "depth=2", "--json", "--wait", "0")
    first, second = plan(box, two, *args), plan(box, two, *args)
    assert first.returncode == second.returncode == DONE, (first.stderr, second.stderr)
    assert rate_limited(box) == 1  # demo-user-1's window was used up; demo-user-2's answered
    assert json.loads(first.stdout)["usd"] == json.loads(second.stdout)["usd"]  # the same sample, the same plan


def test_plan_text_states_its_basis_and_range(sandbox_factory):
    box = sandbox_factory(*WORLD, "--window", "1")
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    done = plan(box, demo_credentials("demo-user-1"), "friends", "-a", f"user_id={seed}", "-a", "depth=3")
    assert done.returncode == DONE, done.stderr
    lines = done.stdout.splitlines()
    [cost] = [line for line in lines if line.startswith("cost: ≈ $")]
    assert ", between $" in cost and " and $" in cost
    [basis] = [line for line in lines if line.startswith("basis: ")]
    assert basis.startswith("basis: level 1 exact: 1 seed(s) looked up, ")
    assert "levels 2..3 extrapolated from a sample of " in basis and "two standard errors" in basis
