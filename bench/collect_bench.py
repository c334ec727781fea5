"""Collect mode against local writing (issue 11 §4): pages/s and what waits in Redis.

Workload: v2 ``/2/users/:id/followers`` pages with full user.fields (~430 kB each, the
largest pages tweetform writes) of the sandbox users of follower tiers 3-4 (``--quick``:
tier 4 only), one ``scrapy push followers --data-type users --api 2`` job per row, taken by
``--workers`` ``scrapy worker`` processes (``CONCURRENT_REQUESTS=8``) sharing one Redis.
The sandbox has no added latency and its limits are raised (quota is never the limit).

Rows, each from a flushed Redis and a fresh job id (the first, unmeasured, warms the
sandbox's page cache):

* ``local``: every worker writes its own output directory (the bucket pipeline);
* ``collect``: workers in collect mode, one ``scrapy collect`` writing one directory,
  at the default cap (64 MB) and at a small cap (``--small-cap``, default 2 MB).

Per row: pages/s from the push until the job's last page is on disk (the job's
``progress`` counters in Redis, which the bucket pipeline keeps in both modes, reach
the page count of the warm-up run), polled every 20 ms; peak bytes waiting in the job's
stream (the ``peak`` the Lua script keeps, exact); peak Redis ``used_memory`` (sampled
every 20 ms); CPU ms per page of the workers and of the collector (``/proc``).

Usage (repository root)::

    .venv/bin/python bench/collect_bench.py            # tiers 3-4 (~180 pages), 2 rounds
    .venv/bin/python bench/collect_bench.py --quick    # tier 4 (~100 pages), 1 round

Results go to ``bench/results-distributed.md`` (section ``collect_bench``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quota_bench import (  # noqa: E402
    PY, ROOT, RESULTS, Proc, demo_credentials, loadavg, md_table, push, tf_env, wait_registered, write_section,
)

from tweetform.testing.servers import RedisServer, SandboxProcess, process_cpu  # noqa: E402

FOLLOWERS = "/2/users/:id/followers"
WORLD = ["--users", "50000", "--seed", "1", "--window", "900", "--limit", f"{FOLLOWERS}=1000000000"]


def pick_users(quick: bool) -> list[int]:
    """Visible users of follower tiers 3 and 4 (~9,200 and ~5,300 followers: 10 and 6 pages each)."""
    from tweetform.sandbox.world import World

    world = World(seed=1, users=50000)

    def tier(t: int) -> list[int]:
        ids = [world.id_of(i) for i in range(2**t - 1, 2 ** (t + 1) - 1)]
        return [u for u in ids if world.state(u) == "normal"]

    return tier(4) if quick else tier(3) + tier(4)


class Sampler(threading.Thread):
    """Polls Redis every 20 ms: peak used_memory, and when the job's pages are all written."""

    def __init__(self, red: RedisServer, job: str, expected: int, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.client, self.job, self.expected = red.client, job, expected
        self.cpu0 = {pid: process_cpu(pid) for pid in pids}
        self.cpu = dict(self.cpu0)  # last CPU seconds seen while each process lived
        self.peak_memory = 0
        self.done_at: float | None = None
        self.stop = threading.Event()

    def written(self) -> int:
        got = self.client.hmget(f"tweetform:job:{self.job}:progress", "pages", "errors")
        return sum(int(x or 0) for x in got)

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak_memory = max(self.peak_memory, int(self.client.info("memory")["used_memory"]))
            if self.done_at is None and self.expected and self.written() >= self.expected:
                self.done_at = time.monotonic()
            for pid in self.cpu:
                now = process_cpu(pid)
                if now == now:  # not NaN: still alive
                    self.cpu[pid] = now
            self.stop.wait(0.02)

    def cpu_used(self, pid: int) -> float:
        return self.cpu[pid] - self.cpu0[pid]


def run_row(mode: str, box: SandboxProcess, red: RedisServer, users: list[int], tmp: Path, *, workers: int, cap: int,
            expected: int, tag: str) -> dict[str, Any]:
    red.flush()
    job = f"bench-{tag}"
    creds = demo_credentials()
    root = tmp / tag
    root.mkdir(parents=True)
    envs = []
    for i in range(workers):
        env = tf_env(box, root / f"worker{i}", creds, red.url)
        env["TWEETFORM_EXIT_WHEN_IDLE"] = "1"
        env["TWEETFORM_PROGRESS"] = "off"
        if mode == "collect":
            env["TWEETFORM_COLLECT"] = "true"
            env["TWEETFORM_COLLECT_MAX_BYTES"] = str(cap)
        envs.append(env)
    procs = [Proc(["worker", "--spiders", "followers", "-s", "CONCURRENT_REQUESTS=8"], e, root / f"worker{i}.log")
             for i, e in enumerate(envs)]
    collector = None
    try:
        wait_registered(red.client, [p.pid for p in procs], spider="followers")
        if mode == "collect":
            collector = Proc(["collect", "--data", str(root / "collected"), "--exit-when-idle"], envs[0], root / "collector.log")
        sampler = Sampler(red, job, expected, [p.pid for p in procs + ([collector] if collector else [])])
        sampler.start()
        started = time.monotonic()
        push(envs[0], "followers", "--user-id", ",".join(map(str, users)), "--data-type", "users", "--api", "2", "--job", job)
        for p in procs:
            p.proc.wait(600)
        if collector is not None:
            collector.proc.wait(600)
        sampler.stop.set()
        sampler.join()
    finally:
        for p in procs + ([collector] if collector else []):
            p.stop()
    pages = sampler.written()
    ended = sampler.done_at or time.monotonic()
    worker_cpu = sum(sampler.cpu_used(p.pid) for p in procs)
    collector_cpu = sampler.cpu_used(collector.pid) if collector else 0.0
    stream_peak = int(red.client.hget(f"tweetform:job:{job}:pages:waiting", "peak") or 0)
    return {"mode": mode, "cap": cap, "pages": pages, "seconds": ended - started, "pages_s": pages / (ended - started),
            "stream_peak": stream_peak, "redis_peak": sampler.peak_memory, "worker_cpu_ms": 1000 * worker_cpu / max(pages, 1),
            "collector_cpu_ms": 1000 * collector_cpu / max(pages, 1),
            "problems": [line for p in procs + ([collector] if collector else []) for line in p.problems()][:5]}


def mb(n: float) -> str:
    return f"{n / 1e6:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--small-cap", type=int, default=2_000_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 2)
    users = pick_users(args.quick)
    box = SandboxProcess(*WORLD, python=PY, cwd=ROOT)
    red = RedisServer()
    tmp = Path(tempfile.mkdtemp(prefix="collect-bench-"))
    try:
        warm = run_row("local", box, red, users, tmp, workers=args.workers, cap=0, expected=0, tag="warm")
        expected = warm["pages"]
        print(f"warm-up: {expected} pages in {warm['seconds']:.1f} s", flush=True)
        results: dict[str, list[dict[str, Any]]] = {}
        for r in range(rounds):
            for mode, cap in (("local", 0), ("collect", 64_000_000), ("collect", args.small_cap)):
                row = run_row(mode, box, red, users, tmp, workers=args.workers, cap=cap, expected=expected,
                              tag=f"{mode}-{cap}-{r}")
                key = "local" if mode == "local" else f"collect, cap {mb(cap)} MB"
                results.setdefault(key, []).append(row)
                print(f"{key}: {row['pages']} pages, {row['pages_s']:.1f} pages/s, stream peak {mb(row['stream_peak'])} MB, "
                      f"Redis peak {mb(row['redis_peak'])} MB, problems {row['problems']}", flush=True)
    finally:
        red.stop()
        box.stop()
    page_size = max((r["stream_peak"] for rows in results.values() for r in rows if r["cap"] == args.small_cap), default=0)
    table = []
    base = statistics.median(r["pages_s"] for r in results["local"])
    for key, rows in results.items():
        med = statistics.median(r["pages_s"] for r in rows)
        table.append([key, rows[0]["pages"], f"{med:.1f}", f"{med / base:.2f}",
                      f"{mb(max(r['stream_peak'] for r in rows))}" if rows[0]["mode"] == "collect" else "–",
                      mb(max(r["redis_peak"] for r in rows)),
                      f"{statistics.median(r['worker_cpu_ms'] for r in rows):.1f}",
                      f"{statistics.median(r['collector_cpu_ms'] for r in rows):.1f}" if rows[0]["mode"] == "collect" else "–"])
    text = "\n".join([
        "## Collect mode vs local writing (issue 11 §4)",
        "",
        f"`.venv/bin/python bench/collect_bench.py{' --quick' if args.quick else ''}` — {len(users)} users' v2 follower pages "
        f"with full user.fields (~430 kB each), {args.workers} workers (`CONCURRENT_REQUESTS=8`), sandbox "
        f"`{box.command}`, no added latency; {rounds} round(s), median pages/s; load average at the end {loadavg()}.",
        "",
        md_table(["row", "pages", "pages/s", "× local", "peak stream MB", "peak Redis used_memory MB",
                  "worker CPU ms/page", "collector CPU ms/page"], table),
        "",
        f"Small cap {mb(args.small_cap)} MB: the stream's peak ({mb(page_size)} MB) stays within cap + one page.",
    ])
    print(text)
    write_section(args.out, "collect_bench", text)


if __name__ == "__main__":
    main()
