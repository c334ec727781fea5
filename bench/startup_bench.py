#!/usr/bin/env python
"""CPU of one scrapy / tweetform process start, before and after, side by side.

Scrapy imports every module of ``COMMANDS_MODULE`` (tweetform.commands) on every start, whatever the
command; the suite starts hundreds of scrapy processes. This bench runs the same command lines from two
source trees, alternating, with this virtualenv's Python (``PYTHONPATH`` names the tree):

* ``before``: a temporary ``git worktree`` of ``--base`` (default: the parent of the commit that added
  tests/test_startup.py, i.e. the code before command modules imported lazily), removed afterwards;
* ``after``: this checkout.

The last row is a real one-page ``scrapy crawl`` against a sandbox (this checkout's, started once).

Each start's CPU (user + system) is read from ``os.wait4``'s rusage of the child: nothing is timed by the
wall clock. The median of ``--rounds`` starts per command and tree is printed, with the ratio.

    .venv/bin/python bench/startup_bench.py                 # 7 rounds (~1 min)
    .venv/bin/python bench/startup_bench.py --rounds 3 --base a3f75b4
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from tweetform.sandbox.credentials import demo_credentials_as_settings
from tweetform.testing.servers import SandboxProcess

ROOT = Path(__file__).resolve().parent.parent

#: command lines that stop before any network: a start, a spider listing, and commands refused at once
COMMANDS: list[tuple[str, list[str]]] = [
    ("scrapy version", ["-m", "scrapy", "version"]),
    ("tweetform version", ["-c", "from tweetform.cli import main; import sys; sys.argv = ['tweetform', 'version']; main()"]),
    ("scrapy status (no REDIS_URL: exit 2)", ["-m", "scrapy", "status"]),
    ("scrapy export (no kind: exit 2)", ["-m", "scrapy", "export"]),
    ("scrapy list (loads the spiders)", ["-m", "scrapy", "list"]),
    ("scrapy crawl users -a user_id=x (exit 2)", ["-m", "scrapy", "crawl", "users", "-a", "user_id=x"]),
]


def crawl_command(base: str, output: Path) -> list[str]:
    """A one-page crawl against the sandbox (the users look-up of one account), as most tests start one."""
    return ["-m", "scrapy", "crawl", "users", "-a", "user_id=12", "-s", f"TWEETFORM_API_BASE={base}",
            "-s", f"TWEETFORM_OUTPUT_DIR={output}", "-s", "TWEETFORM_BUDGET_USD=unlimited",
            "-s", "TWEETFORM_CREDENTIALS=" + json.dumps([c for c in demo_credentials_as_settings() if c["alias"] == "demo-app-1"])]


def default_base() -> str:
    added = subprocess.run(["git", "log", "--diff-filter=A", "--format=%H", "--", "tests/test_startup.py"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    if not added:
        sys.exit("no commit adds tests/test_startup.py here: give --base REV")
    return f"{added[-1]}~1"


def cpu_of(tree: Path, args: list[str], codes: set[int]) -> float:
    """User + system CPU seconds of one start of ``python ARGS`` with ``tree`` first on the path (its exit status
    goes into ``codes``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWEETFORM_", "REDIS_", "SCRAPY_"))}
    env["PYTHONPATH"] = str(tree)
    env["TWEETFORM_OUTPUT_DIR"] = tempfile.gettempdir()  # nothing is written: every command line stops before
    proc = subprocess.Popen([sys.executable, *args], cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here
    codes.add(proc.returncode)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default=None, help="the commit to compare with (default: before tests/test_startup.py)")
    parser.add_argument("--rounds", type=int, default=7)
    opts = parser.parse_args()
    base = opts.base or default_base()
    rev = subprocess.run(["git", "rev-parse", "--short", base], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as tmp:
        before = Path(tmp) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(before), rev], cwd=ROOT, check=True, capture_output=True)
        box = SandboxProcess("--users", "100")
        try:
            rows = []
            commands = COMMANDS + [("scrapy crawl users (one page from the sandbox)", crawl_command(box.base, Path(tmp) / "data"))]
            for name, args in commands:
                cpu: dict[str, list[float]] = {"before": [], "after": []}
                codes: dict[str, set[int]] = {"before": set(), "after": set()}
                for _ in range(opts.rounds):  # alternating, so load changes hit both alike
                    cpu["before"].append(cpu_of(before, args, codes["before"]))
                    cpu["after"].append(cpu_of(ROOT, args, codes["after"]))
                exits = " / ".join(",".join(map(str, sorted(codes[t]))) for t in ("before", "after"))
                rows.append((name, statistics.median(cpu["before"]), statistics.median(cpu["after"]), exits))
        finally:
            box.stop()
            subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT, check=True, capture_output=True)
    print(f"CPU (user + system) per process start, median of {opts.rounds}; before = {rev}, after = {head} (working tree)\n")
    print("| command line | exit status before / after | before (s) | after (s) | after / before |")
    print("|---|---|---:|---:|---:|")
    for name, b, a, exits in rows:
        print(f"| {name} | {exits} | {b:.3f} | {a:.3f} | {a / b:.2f} |")


if __name__ == "__main__":
    main()
