"""CPU per page of the local backend in a JOBDIR (SQLite) vs in memory (issue 10, feature 1; issue 16 §3).

One sandbox (100,000 users, limits raised to 10^9 so quota never waits, no added latency), a
friends crawl of depth 3 capped at ``--max-users`` users (level by level: every page's ids are
recorded, its users claimed), run to the end by ``scrapy crawl`` three times per round, side by side:
in memory (``-s JOBDIR=``), with ``-s JOBDIR=<fresh dir>``, and as a plain crawl runs by default
(its implicit JOBDIR, ``<output>/_jobs/<job>/``). Per run: the process's CPU time (user +
system, from ``wait4``) and the pages it wrote; the extra CPU of the JOBDIR run per page is
what the SQLite backend costs (claims, levels, queue rows with leases, fingerprints, one
commit per page). A first unmeasured run warms the sandbox's page cache.

Usage (repository root)::

    .venv/bin/python bench/resume_bench.py            # 5 rounds, max_users=2000
    .venv/bin/python bench/resume_bench.py --quick    # 1 round, max_users=800
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quota_bench import PY, ROOT, demo_credentials, loadavg, md_table, tf_env  # noqa: E402

from tweetform.testing.servers import SandboxProcess  # noqa: E402

FOLLOWING = "/2/users/:id/following"


def lines(folder: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in folder.rglob("*.jsonl")) if folder.is_dir() else 0


MEMORY, EXPLICIT, IMPLICIT = "in memory (-s JOBDIR=)", "JOBDIR (-s JOBDIR=<dir>)", "default (implicit <output>/_jobs/<job>/)"


def one_crawl(box: SandboxProcess, seed: int, max_users: int, work: Path, mode: str) -> tuple[float, int]:
    out = work / "out"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    cmd = [PY, "-m", "scrapy", "crawl", "friends", "-L", "WARNING", "-a", f"user_id={seed}", "-a", "depth=3",
           "-a", f"max_users={max_users}", "-s", "TWEETFORM_PROGRESS=off"]
    # every local crawl keeps a JOBDIR (by default <output>/_jobs/<job>/) unless told not to
    # (-s JOBDIR= : in memory, the baseline)
    if mode == MEMORY:
        cmd += ["-s", "JOBDIR="]
    elif mode == EXPLICIT:
        cmd += ["-s", f"JOBDIR={work / 'job'}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=tf_env(box, out, demo_credentials("demo-user-1", "demo-app-1")),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"crawl exited {proc.returncode}")
    return usage.ru_utime + usage.ru_stime, lines(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--max-users", type=int)
    args = ap.parse_args()
    rounds = args.rounds or (1 if args.quick else 5)
    max_users = args.max_users or (800 if args.quick else 2000)
    box = SandboxProcess("--users", "100000", "--seed", "7", "--limit", f"{FOLLOWING}=1000000000,1000000000", python=PY, cwd=ROOT)
    tmp = Path(tempfile.mkdtemp(prefix="resume-bench-"))
    try:
        seed = box.get("/_sandbox/examples")["many_friends"][0]
        one_crawl(box, seed, max_users, tmp / "warm", MEMORY)  # the sandbox renders each page once
        rows: dict[str, list[tuple[float, int]]] = {MEMORY: [], EXPLICIT: [], IMPLICIT: []}
        for _ in range(rounds):
            for name in rows:
                rows[name].append(one_crawl(box, seed, max_users, tmp / "run", name))
        table = []
        base = statistics.median(cpu / pages for cpu, pages in rows[MEMORY])
        for name, runs in rows.items():
            per_page = statistics.median(cpu / pages for cpu, pages in runs)
            table.append([name, str(runs[0][1]), f"{per_page * 1000:.2f}", f"{per_page / base:.2f}x"])
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {loadavg()}; "
              f"{rounds} round(s), friends depth=3 max_users={max_users}, {time.strftime('%Y-%m-%d')}")
        print(md_table(["row", "pages", "CPU ms/page (median)", "ratio"], table))
        for name in (EXPLICIT, IMPLICIT):
            # each round's runs side by side: this run's extra CPU per page over the in-memory one
            extra = sorted((j[0] / j[1] - m[0] / m[1]) * 1000 for m, j in zip(rows[MEMORY], rows[name]))
            print(f"{name}: extra CPU per page, per round (ms): {', '.join(f'{e:+.2f}' for e in extra)}; "
                  f"median {statistics.median(extra):+.2f}")
    finally:
        box.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
