"""P3 scale-out and P4 memory benchmarks of distributed mode (issue 5).

P3 scale-out (``--part scale``): a sandbox with 500 ms latency and limits raised to 10^9 (quota
never the limit), each worker with ``-s CONCURRENT_REQUESTS=8`` (so one worker can do at most
8 / 0.5 = 16 pages/s: latency-bound, not CPU-bound on 2 cores), a friends crawl of depth 3
from a user with ~1,800 friends in a 100,000-user world (~41,000 pages: never finishes during a
run). Rows: ``scrapy crawl`` (one process, no Redis), then 1, 2 and 4 ``scrapy worker``
processes sharing one Redis. Per row: start, wait for the first page, ramp up ``--ramp`` s,
then measure ``--seconds`` s:

* pages/s: 200 answers served by the sandbox for the endpoint in the measured interval
  (``/_sandbox/counters`` delta) ÷ its length; ratio to the 1-worker row (target ≥ 0.9·N);
* Redis commands per page: ``INFO stats`` ``total_commands_processed`` delta ÷ pages (it counts
  the commands Lua scripts run as well as the client's), EVALSHA calls per page (client
  round trips of the Lua scripts) and the top commands (``INFO commandstats`` delta);
* CPU ms per page of the tweetform processes (``/proc/<pid>/stat`` utime + stime deltas),
  of redis-server (``INFO cpu``) and of the sandbox.

Rows are interleaved over ``--rounds`` rounds (median reported); each row starts from a
flushed Redis and a fresh job id. The sandbox renders each page once and then serves it from
its cache, so the first row of the first round also pays cold renders (sandbox CPU column).

P4 memory (``--part memory``): a 1,000,000-user world, limits 10^9, no added latency; a
followers crawl of depth 2 of user 12 (@jack, ~567,000 followers: its 568 pages queue one
request per follower) taken by ``--mem-workers`` workers for ``--mem-seconds`` s (then they
are stopped: bounded). Every ``--mem-every`` s: VmRSS of each worker (``/proc/<pid>/status``),
Redis ``used_memory``, seen users (the job's claim count, field ``n`` of ``tweetform:job:<job>:expanded``), queued requests
(the job hash's ``queued``; a member of ``tweetform:followers:requests:<endpoint>`` holds several). At the end, ``MEMORY USAGE <key>
SAMPLES 0`` of every tweetform key ÷ its members: bytes per seen user and per queued request.
Target: worker RSS flat, ≤ 300 MB.

Usage (repository root)::

    .venv/bin/python bench/scale_bench.py              # both parts: 2 rounds × 30 s rows, 240 s memory run (~12 min)
    .venv/bin/python bench/scale_bench.py --quick      # 1 round × 20 s rows, 90 s memory run (~5 min); writes only with --out
    .venv/bin/python bench/scale_bench.py --part scale|memory
    .venv/bin/python bench/scale_bench.py --part compare --compare REF   # redis-server CPU per page, REF's worker vs this one
    .venv/bin/python bench/scale_bench.py --part scripts --out /tmp/x.md  # µs inside each per-page script, quiet Redis

Results go to ``bench/results-distributed.md`` (sections ``scale_bench`` and ``memory_bench``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import shutil
import subprocess
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quota_bench import (  # noqa: E402
    PY, ROOT, RESULTS, Proc, demo_credentials, loadavg, md_table, proc_rss_mb, push, tf_env, wait_registered,
    write_section,
)

from tweetform.testing.servers import RedisServer, SandboxProcess, process_cpu  # noqa: E402

FOLLOWING = "/2/users/:id/following"
FOLLOWERS = "/2/users/:id/followers"
BIG = 1_000_000_000


TIMER_ENV = "BENCH_REDIS_TIMER_DIR"
_REDIS_TIME = {"calls": 0, "pipelines": 0, "seconds": 0.0}


class RedisTimer:
    """Scrapy extension for this benchmark (``-s EXTENSIONS={"bench.scale_bench.RedisTimer": 0}``): wall time
    this process spends blocked in Redis calls and their round trips (each command, or each pipeline, is
    one round trip), written to ``$BENCH_REDIS_TIMER_DIR/<pid>.json`` twice a second."""

    def __init__(self, crawler: Any) -> None:
        import redis.client
        from scrapy import signals
        from twisted.internet import task

        self.path = Path(os.environ[TIMER_ENV]) / f"{os.getpid()}.json"
        if not getattr(redis.client.Redis, "_bench_timed", False):
            plain, pipelined = redis.client.Redis.execute_command, redis.client.Pipeline.execute

            def execute_command(self: Any, *a: Any, **kw: Any) -> Any:
                t = time.perf_counter()
                try:
                    return plain(self, *a, **kw)
                finally:
                    _REDIS_TIME["calls"] += 1
                    _REDIS_TIME["seconds"] += time.perf_counter() - t

            def execute(self: Any, *a: Any, **kw: Any) -> Any:
                t = time.perf_counter()
                try:
                    return pipelined(self, *a, **kw)
                finally:
                    _REDIS_TIME["pipelines"] += 1
                    _REDIS_TIME["seconds"] += time.perf_counter() - t

            redis.client.Redis.execute_command = execute_command  # type: ignore[method-assign]
            redis.client.Pipeline.execute = execute  # type: ignore[method-assign]
            redis.client.Redis._bench_timed = True  # type: ignore[attr-defined]
        self.loop = task.LoopingCall(self.dump)
        crawler.signals.connect(self.opened, signal=signals.spider_opened)
        crawler.signals.connect(self.dump, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Any) -> "RedisTimer":
        return cls(crawler)

    def opened(self, spider: Any) -> None:
        self.loop.start(0.5)

    def dump(self, *args: Any, **kw: Any) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({**_REDIS_TIME, "t": time.time()}))
        tmp.replace(self.path)


def read_timer(folder: Path, pid: int) -> dict[str, float]:
    try:
        return json.loads((folder / f"{pid}.json").read_text())
    except (OSError, ValueError):
        return {"calls": 0, "pipelines": 0, "seconds": 0.0, "t": time.time()}


def ping_ms(red: RedisServer, n: int = 5) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        red.client.ping()
        times.append(1000 * (time.perf_counter() - t))
    return statistics.median(times)


def responses(log: str) -> int:
    found = re.findall(r"'response_received_count': (\d+)", log)
    return int(found[-1]) if found else 0


def redis_snapshot(red: RedisServer) -> dict[str, Any]:
    info = red.client.info("all")
    cmds = {k[len("cmdstat_"):]: v["calls"] for k, v in info.items() if k.startswith("cmdstat_")}
    usec = {k[len("cmdstat_"):]: v["usec"] for k, v in info.items() if k.startswith("cmdstat_")}
    return {"total": info["total_commands_processed"], "cmds": cmds, "usec": usec,
            "cpu": info["used_cpu_sys"] + info["used_cpu_user"], "mem": info["used_memory"]}


# ------------------------------------------------------------------------------------------
# P3


def checkout(ref: str, workdir: Path) -> Path:
    """``ref`` of this repository, unpacked into ``workdir`` (``git archive``): the code to compare with."""
    target = workdir / f"code-{re.sub(r'[^A-Za-z0-9_.-]', '_', ref)}"
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def script_names(code: Path | None) -> dict[str, str]:
    """SHA1 -> name of the Lua scripts of a checkout (``-- include:`` resolved as scripts.py does)."""
    lua = (code or ROOT) / "tweetform" / "state" / "redis" / "lua"
    collect = (code or ROOT) / "tweetform" / "collect" / "lua"

    def source(folder: Path, name: str) -> str:
        lines = []
        for line in (folder / f"{name}.lua").read_text().splitlines():
            if line.startswith("-- include: "):
                lines.append(source(lua, line.removeprefix("-- include: ").strip()))
            else:
                lines.append(line)
        return "\n".join(lines) + "\n"

    found = {}
    for folder in (lua, collect):
        for path in folder.glob("*.lua") if folder.is_dir() else []:
            for text in (source(folder, path.stem), path.read_text()):
                found[hashlib.sha1(text.encode()).hexdigest()] = path.stem
    return found


def script_times(red: RedisServer, names: dict[str, str]) -> dict[str, list[float]]:
    """From the slow log (every command logged): µs and calls per script (EVALSHA) or command."""
    out: dict[str, list[float]] = {}
    for entry in red.client.slowlog_get(-1):
        args = [a.decode(errors="replace") if isinstance(a, bytes) else str(a) for a in entry["command"].split(b" ")[:2]] \
            if isinstance(entry["command"], bytes) else str(entry["command"]).split(" ")[:2]
        name = args[0].lower()
        if name == "evalsha" and len(args) > 1:
            name = names.get(args[1], "evalsha ?")
        total = out.setdefault(name, [0.0, 0])
        total[0] += entry["duration"]
        total[1] += 1
    return out


def scale_row(label: str, n: int, box: SandboxProcess, red: RedisServer, creds: list[dict[str, str]], seed: int, depth: int,
              conc: int, ramp: float, seconds: float, workdir: Path, tag: str, code: Path | None = None,
              breakdown: bool = False) -> dict[str, Any]:
    box.reset()
    red.flush()
    out = workdir / f"{tag}-{label}"
    out.mkdir(parents=True)
    settings = ["-s", f"CONCURRENT_REQUESTS={conc}"]
    timers = out / "timers"
    timers.mkdir()
    if n == 0:  # single process, no Redis
        env = tf_env(box, out, creds)
        procs = [Proc(["crawl", "friends", "-a", f"user_id={seed}", "-a", f"depth={depth}", *settings], env, out / "crawl.log")]
    else:
        env = tf_env(box, out, creds, red.url)
        env[TIMER_ENV] = str(timers)
        settings += ["-s", 'EXTENSIONS={"bench.scale_bench.RedisTimer": 0, "tweetform.progress.ProgressExtension": 500}']
        procs = [Proc(["worker", "--spiders", "friends", *settings], env, out / f"worker{i}.log", code) for i in range(n)]
        wait_registered(red.client, [p.pid for p in procs])
        push(env, "friends", "--user-id", str(seed), "--depth", str(depth), "--job", f"scale-{tag}-{re.sub(r'[^A-Za-z0-9]', '', label)}")
    try:
        deadline = time.time() + 120
        while box.served(FOLLOWING) == 0:
            if time.time() > deadline or any(p.proc.poll() is not None for p in procs):
                raise RuntimeError(f"{label}: no page served; see {out}")
            time.sleep(0.2)
        time.sleep(ramp)
        t0, s0 = time.time(), box.served(FOLLOWING)
        c0 = [process_cpu(p.pid) for p in procs]
        r0, b0 = redis_snapshot(red), process_cpu(box.proc.pid)
        k0 = [read_timer(timers, p.pid) for p in procs]
        if breakdown:  # --breakdown: every command in the slow log (which costs Redis CPU of its own)
            red.client.config_set("slowlog-max-len", 1_000_000)
            red.client.config_set("slowlog-log-slower-than", 0)
            red.client.slowlog_reset()
        pings = []
        while time.time() < t0 + seconds:
            time.sleep(1.0)
            pings.append(ping_ms(red))
        t1, s1 = time.time(), box.served(FOLLOWING)
        c1 = [process_cpu(p.pid) for p in procs]
        r1, b1 = redis_snapshot(red), process_cpu(box.proc.pid)
        k1 = [read_timer(timers, p.pid) for p in procs]
        logged = script_times(red, script_names(code)) if breakdown else {}
        red.client.config_set("slowlog-log-slower-than", 10000)
        alive = all(p.proc.poll() is None for p in procs)
    finally:
        for p in procs:
            p.stop()
    problems = [line for p in procs for line in p.problems()]
    for line in problems[:5]:
        print(f"   log: {line}", flush=True)
    if not alive:
        raise RuntimeError(f"{label}: a process ended during the measurement; see {out}")
    pages = s1 - s0
    cmds = {k: r1["cmds"].get(k, 0) - r0["cmds"].get(k, 0) for k in r1["cmds"]}
    cmds.pop("info", None)
    total = r1["total"] - r0["total"] - 1 - 5 * len(pings)  # minus the INFO of the snapshot itself and our PINGs
    trips = sum(b["calls"] + b["pipelines"] - a["calls"] - a["pipelines"] for a, b in zip(k0, k1))
    blocked = [(b["seconds"] - a["seconds"]) / max(b["t"] - a["t"], 1e-9) for a, b in zip(k0, k1)]
    per_proc = [(b - a) for a, b in zip(c0, c1)]
    return {
        "label": label, "n": n, "pages": pages, "problems": len(problems), "secs": t1 - t0, "rate": pages / (t1 - t0),
        "cpu_ms": 1000 * sum(per_proc) / max(pages, 1), "cpu_util": sum(per_proc) / (t1 - t0),
        "redis_cmds": total / max(pages, 1), "evalsha": (cmds.get("evalsha", 0) + cmds.get("eval", 0)) / max(pages, 1),
        "cmds": {k: v / max(pages, 1) for k, v in cmds.items() if v},
        "usec": {k: (r1["usec"].get(k, 0) - r0["usec"].get(k, 0)) / max(pages, 1) for k in r1["usec"]},
        "scripts": {k: (us / max(pages, 1), calls / max(pages, 1)) for k, (us, calls) in logged.items()},
        "redis_cpu_ms": 1000 * (r1["cpu"] - r0["cpu"]) / max(pages, 1),
        "sandbox_cpu_ms": 1000 * (b1 - b0) / max(pages, 1),
        "trips": trips / max(pages, 1), "redis_wall_ms": 1000 * sum(b["seconds"] - a["seconds"] for a, b in zip(k0, k1)) / max(pages, 1),
        "blocked": statistics.mean(blocked) if n else 0.0, "ping_ms": statistics.median(pings) if pings else float("nan"),
        "worker_responses": [responses(p.text()) for p in procs],
    }


def part_scale(args: argparse.Namespace, report: list[tuple[str, str]]) -> None:
    started, load0 = time.time(), loadavg()
    box = SandboxProcess("--users", "100000", "--seed", "1", "--window", "900", "--limit", f"{FOLLOWING}={BIG}",
                         "--latency", str(args.latency), python=PY, cwd=ROOT)
    red = RedisServer()
    workdir = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    creds = demo_credentials(*[f"demo-user-{i}" for i in range(1, 9)])
    plan = [("crawl", 0), ("1 worker", 1), ("2 workers", 2), ("4 workers", 4)]
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in plan}
    try:
        seed = box.get("/_sandbox/examples")["many_friends"][0]
        for rnd in range(args.rounds):
            order = plan if rnd % 2 == 0 else plan[::-1]
            for label, n in order:
                print(f"== round {rnd + 1} {label} ...", flush=True)
                res = scale_row(label, n, box, red, creds, seed, 3, args.concurrency, args.ramp, args.seconds, workdir, f"r{rnd}")
                runs[label].append(res)
                print(f"   {res['rate']:.1f} pages/s, CPU {res['cpu_ms']:.1f} ms/page, Redis {res['redis_cmds']:.0f} cmds/page, "
                      f"{res['trips']:.0f} round trips/page, {res['redis_wall_ms']:.0f} ms/page blocked in Redis calls "
                      f"({res['blocked']:.0%} of each worker's time), PING {res['ping_ms']:.2f} ms, "
                      f"({res['evalsha']:.1f} EVALSHA), redis CPU {res['redis_cpu_ms']:.2f} ms/page, sandbox {res['sandbox_cpu_ms']:.2f} ms/page, "
                      f"responses per process {res['worker_responses']}",
                      flush=True)
    finally:
        red.stop()
        box.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    def med(label: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[label])

    one = med("1 worker", "rate")
    ideal = args.concurrency / args.latency
    rows = []
    for label, n in plan:
        rate = med(label, "rate")
        ratio = "" if n == 0 else f"{rate / one:.2f} (target ≥ {0.9 * n:.1f})"
        rows.append([
            label if n else "crawl (1 process, no Redis)", n or 1, f"{rate:.1f}", " / ".join(f"{r['rate']:.1f}" for r in runs[label]),
            f"{rate / (ideal * max(n, 1)):.0%}", ratio or "–",
            "–" if n == 0 else f"{med(label, 'redis_cmds'):.0f}", "–" if n == 0 else f"{med(label, 'evalsha'):.1f}",
            "–" if n == 0 else f"{med(label, 'trips'):.0f}", "–" if n == 0 else f"{med(label, 'redis_wall_ms'):.0f} ({med(label, 'blocked'):.0%})",
            "–" if n == 0 else f"{med(label, 'ping_ms'):.2f}",
            f"{med(label, 'cpu_ms'):.1f}", f"{med(label, 'cpu_util'):.2f}",
            "–" if n == 0 else f"{med(label, 'redis_cpu_ms'):.2f}", f"{med(label, 'sandbox_cpu_ms'):.2f}",
            sum(r["problems"] for r in runs[label]),
        ])
    header = ["row", "processes", "pages/s (median)", "pages/s per round", "of N × 16 p/s", "× 1 worker",
              "Redis cmds/page", "EVALSHA/page", "round trips/page", "ms/page blocked in Redis calls (share of worker time)",
              "PING ms", "tweetform CPU ms/page", "tweetform CPU cores", "redis-server CPU ms/page",
              "sandbox CPU ms/page", "ERROR lines in logs"]
    top = sorted(runs["4 workers"][-1]["cmds"].items(), key=lambda kv: -kv[1])[:8]
    crawl_cpu, w1_cpu = med("crawl", "cpu_ms"), med("1 worker", "cpu_ms")
    verdict = []
    for label, n in plan[2:]:
        r = med(label, "rate") / one
        verdict.append(f"{label}: {r:.2f}× ({'met' if r >= 0.9 * n else 'missed'})")
    text = "\n".join([
        "## P3 scale-out: pages/s with 1, 2, 4 worker processes (issue 5)",
        "",
        "```",
        f".venv/bin/python bench/scale_bench.py{' --quick' if args.quick else ''} --part scale",
        "```",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}; sandbox `{box.command}`; job: friends depth 3 of "
        f"user {seed} (`scrapy push friends --user-id {seed} --depth 3`; ~41,000 pages, never finished in a row); "
        f"workers `scrapy worker --spiders friends -s CONCURRENT_REQUESTS={args.concurrency}` (8 demo user credentials, "
        f"REDIS_URL to one redis-server); crawl row `scrapy crawl friends -a user_id={seed} -a depth=3 "
        f"-s CONCURRENT_REQUESTS={args.concurrency}` without REDIS_URL. Each row: {args.ramp:g} s ramp after the first page, "
        f"{args.seconds:g} s measured; {args.rounds} round(s), rows interleaved (odd rounds reversed), medians.",
        "",
        md_table(header, rows),
        "",
        f"- Scale-out target (≥ 0.9·N × the 1-worker rate): {'; '.join(verdict)}.",
        f"- CPU per page: {w1_cpu:.1f} ms with Redis (1 worker) vs {crawl_cpu:.1f} ms in one process without Redis "
        f"({w1_cpu / crawl_cpu:.2f}×), plus {med('1 worker', 'redis_cpu_ms'):.2f} ms in redis-server.",
        "- Redis commands per page, 4 workers, last round (total_commands_processed counts commands run inside Lua scripts): "
        + ", ".join(f"{k} {v:.1f}" for k, v in top) + ".",
        "",
        "Round trips and blocked time are counted inside each worker by a benchmark-only Scrapy extension "
        "(`-s EXTENSIONS={\"bench.scale_bench.RedisTimer\": 0}`, wrapping redis-py's `Redis.execute_command` and "
        "`Pipeline.execute`; tweetform's progress extension kept); PING ms is the benchmark's own "
        "Redis round trip during the row (machine load shows there).",
        "",
        f"`of N × 16 p/s`: pages/s ÷ (N × CONCURRENT_REQUESTS / latency), the latency-bound ceiling. Machine: {os.cpu_count()} CPUs "
        f"(shared with other work), Python {platform.python_version()}, load {load0} → {loadavg()}; part took {time.time() - started:.0f} s.",
    ])
    print("\n" + text)
    report.append(("scale_bench", text))


def part_compare(args: argparse.Namespace, report: list[tuple[str, str]]) -> None:
    """Redis time per page: 1 worker of ``--compare REF`` (checked out into a temp dir) and 1 worker of this
    checkout, same sandbox, same job, rows interleaved, each on a flushed Redis."""
    started, load0 = time.time(), loadavg()
    box = SandboxProcess("--users", "100000", "--seed", "1", "--window", "900", "--limit", f"{FOLLOWING}={BIG}",
                         "--latency", str(args.latency), python=PY, cwd=ROOT)
    red = RedisServer()
    workdir = Path(tempfile.mkdtemp(prefix="scale-compare-"))
    creds = demo_credentials(*[f"demo-user-{i}" for i in range(1, 9)])
    old = checkout(args.compare, workdir)
    plan = [(f"before ({args.compare})", old), ("after (this checkout)", None)]
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in plan}
    try:
        seed = box.get("/_sandbox/examples")["many_friends"][0]
        for rnd in range(args.rounds):
            for label, code in (plan if rnd % 2 == 0 else plan[::-1]):
                print(f"== round {rnd + 1} {label} ...", flush=True)
                res = scale_row(label, 1, box, red, creds, seed, 3, args.concurrency, args.ramp, args.seconds, workdir, f"r{rnd}", code,
                                args.breakdown)
                runs[label].append(res)
                print("   slow log µs/page (calls/page): " + ", ".join(f"{k} {us:.0f} ({c:.1f})" for k, (us, c) in
                                                                    sorted(res["scripts"].items(), key=lambda kv: -kv[1][0])[:12]))
                print(f"   {res['rate']:.1f} pages/s, redis CPU {res['redis_cpu_ms']:.2f} ms/page, {res['redis_cmds']:.0f} cmds/page, "
                      f"{res['evalsha']:.1f} EVALSHA/page, {res['trips']:.1f} round trips/page, worker CPU {res['cpu_ms']:.1f} ms/page", flush=True)
    finally:
        red.stop()
        box.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    def med(label: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[label])

    rows = []
    for label, _ in plan:
        top = sorted(runs[label][-1]["usec"].items(), key=lambda kv: -kv[1])[:6]
        rows.append([label, " / ".join(f"{r['redis_cpu_ms']:.2f}" for r in runs[label]), f"{med(label, 'redis_cpu_ms'):.2f}",
                     f"{med(label, 'redis_cmds'):.0f}", f"{med(label, 'evalsha'):.1f}", f"{med(label, 'trips'):.1f}",
                     f"{med(label, 'rate'):.1f}", f"{med(label, 'cpu_ms'):.1f}", ", ".join(f"{k} {v:.0f}" for k, v in top)])
    (b, _), (a, _) = plan
    text = "\n".join([
        "## Redis CPU per page, before and after (issue 15 §4)",
        "",
        "```",
        f".venv/bin/python bench/scale_bench.py --part compare --compare {args.compare} --rounds {args.rounds} --seconds {args.seconds:g}"
        + (" --breakdown" if args.breakdown else ""),
        "```",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}; sandbox `{box.command}`; each row: 1 `scrapy worker "
        f"--spiders friends -s CONCURRENT_REQUESTS={args.concurrency}` on `scrapy push friends --user-id {seed} --depth 3` "
        f"(a fresh job, a flushed Redis), {args.ramp:g} s ramp, {args.seconds:g} s measured; rows interleaved over {args.rounds} round(s).",
        "",
        md_table(["code", "redis-server CPU ms/page per round", "median", "Redis cmds/page (Lua's included)", "EVALSHA/page",
                  "round trips/page", "pages/s", "worker CPU ms/page", "top commands by µs/page (INFO commandstats; a script's own commands count in its EVALSHA too)"], rows),
        "",
        f"- redis-server CPU per page: {med(b, 'redis_cpu_ms'):.2f} → {med(a, 'redis_cpu_ms'):.2f} ms "
        f"({med(a, 'redis_cpu_ms') / med(b, 'redis_cpu_ms'):.2f}×); commands per page {med(b, 'redis_cmds'):.0f} → {med(a, 'redis_cmds'):.0f}.",
        f"Machine: {os.cpu_count()} CPUs (shared), load {load0} → {loadavg()}; part took {time.time() - started:.0f} s.",
    ])
    print("\n" + text)
    report.append(("redis_cpu_compare", text))


def part_scripts(args: argparse.Namespace, report: list[tuple[str, str]]) -> None:
    """Redis time inside each per-page script on a quiet, dedicated redis-server (no worker, no sandbox): friends
    pages of ``--page-ids`` random ids out of 200,000 replayed through this checkout's claim (``SeenUsers.claim``),
    push of the claimed users' packed first pages (one entry per request, as before runs, and as runs: side by side,
    alternating pages) and billed-ids dedupe (``SharedCostLedger.new_ids``: as one worker that remembers the ids Redis
    said are billed, and, on another app's identical set, as a worker that has met none of the page's ids, which asks
    about every one: what each id costs a worker that meets it first); warm-up pages first, so the job and the
    day hold ~100,000 ids. µs from ``INFO commandstats`` (EVALSHA usec) around each phase."""
    import random

    from tweetform.cost.ledger import SharedCostLedger
    from tweetform.state.redis import keys as rkeys, scripts
    from tweetform.state.redis.queue import push_entries
    from tweetform.state.redis.seen import SeenUsers

    started, load0 = time.time(), loadavg()
    red = RedisServer()
    try:
        r = red.client
        seen, ledger, push = SeenUsers(r), SharedCostLedger(r, {"user": 10}), scripts.load(r, "queue_push")
        cold = SharedCostLedger(r, {"user": 10}, known_limit=0)
        job, ep = "scripts-bench", FOLLOWING
        r.hset(rkeys.job(job), mapping={"state": "running", "queued": 0})
        rnd = random.Random(1)
        universe = [rnd.randrange(10**9, 2 * 10**9) for _ in range(200_000)]
        templates = rkeys.job_templates()
        queue_keys = [rkeys.queue_sequence("friends"), rkeys.in_flight("friends"), rkeys.queue_endpoints("friends"),
                      rkeys.deliveries("friends")]

        def usec() -> int:
            return int(r.info("commandstats").get("cmdstat_evalsha", {"usec": 0})["usec"])

        def push_args(new: list[int], runs: bool) -> list[Any]:
            items = [(ep, job, -2, f"~{u},2,2", "", "", "c", rkeys.expanded(job), rkeys.expanded_buckets(job), str(u).encode(),
                      "pending/2") for u in new]
            return [templates, 32, *push_entries(items, lambda e: rkeys.queue("friends", e), runs)]

        billed, asked = "billed ids, one worker's memory", "billed ids, every id asked"
        totals = {"claim": 0.0, "push, an entry per request": 0.0, "push, runs": 0.0, billed: 0.0, asked: 0.0}
        counted = {"claim": 0, "push, an entry per request": 0, "push, runs": 0, billed: 0, asked: 0}
        pushed = {"push, an entry per request": 0, "push, runs": 0}
        for n in range(args.warm_pages + args.pages):
            ids = rnd.sample(universe, args.page_ids)
            u0 = usec()
            new = seen.claim(job, ids, f"page-{n}")
            u1 = usec()
            label = "push, runs" if n % 2 else "push, an entry per request"
            if new:
                push(keys=queue_keys, args=push_args(new, n % 2 == 1))
            u2 = usec()
            ledger.new_ids("app", "2026-12-06", [("user", [str(i) for i in ids])])
            u3 = usec()
            cold.new_ids("app-cold", "2026-12-06", [("user", [str(i) for i in ids])])
            u4 = usec()
            if n >= args.warm_pages:
                for name, us in (("claim", u1 - u0), (label, u2 - u1), (billed, u3 - u2), (asked, u4 - u3)):
                    totals[name] += us
                    counted[name] += 1
                pushed[label] += len(new)
        claimed = seen.count(job)
    finally:
        red.stop()
    rows = [[name, f"{totals[name] / counted[name]:.1f}",
             f"{totals[name] / max(pushed.get(name, counted[name] * args.page_ids), 1):.2f}"] for name in totals]
    text = "\n".join([
        "## Redis time inside the per-page scripts, quiet Redis (issue 15 §4)",
        "",
        "```",
        f".venv/bin/python bench/scale_bench.py --part scripts --pages {args.pages} --page-ids {args.page_ids}",
        "```",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}: {args.warm_pages} warm-up pages, then {args.pages} measured; "
        f"{args.page_ids} ids a page out of 200,000; {claimed} users claimed at the end; pushes alternate pages between the "
        "two ways of sending a page's claimed first pages.",
        "",
        md_table(["script", "µs per page", "µs per id (claim, billed ids) or per pushed request"], rows),
        "",
        f"Machine: {os.cpu_count()} CPUs (shared), load {load0} → {loadavg()}; part took {time.time() - started:.0f} s.",
    ])
    print("\n" + text)
    report.append(("redis_scripts", text))


# ------------------------------------------------------------------------------------------
# P4


def members(r: Any, key: str) -> int:
    kind = r.type(key).decode()
    return {"hash": r.hlen, "set": r.scard, "zset": r.zcard, "list": r.llen}.get(kind, lambda k: 1)(key)


def part_memory(args: argparse.Namespace, report: list[tuple[str, str]]) -> None:
    started, load0 = time.time(), loadavg()
    box = SandboxProcess("--users", "1000000", "--seed", "1", "--window", "900", "--limit", f"{FOLLOWERS}={BIG}",
                         "--limit", f"{FOLLOWING}={BIG}", python=PY, cwd=ROOT)
    red = RedisServer()
    workdir = Path(tempfile.mkdtemp(prefix="memory-bench-"))
    creds = demo_credentials(*[f"demo-user-{i}" for i in range(1, 9)])
    job, spider, seed = "mem-jack", "followers", 12
    queue_key = f"tweetform:{spider}:requests:{FOLLOWERS}"
    samples: list[dict[str, Any]] = []
    try:
        env = tf_env(box, workdir / "out", creds, red.url)
        procs = [Proc(["worker", "--spiders", spider], env, workdir / f"worker{i}.log") for i in range(args.mem_workers)]
        wait_registered(red.client, [p.pid for p in procs], spider=spider)
        time.sleep(1.0)
        base_mem = red.client.info("memory")["used_memory"]
        start_rss = [proc_rss_mb(p.pid) for p in procs]
        push(env, spider, "--user-id", str(seed), "--depth", "2", "--job", job)
        t0 = time.time()
        try:
            while time.time() - t0 < args.mem_seconds:
                time.sleep(args.mem_every)
                if any(p.proc.poll() is not None for p in procs):
                    raise RuntimeError(f"a worker ended; see {workdir}")
                samples.append({
                    "t": time.time() - t0, "rss": [proc_rss_mb(p.pid) for p in procs],
                    "used": red.client.info("memory")["used_memory"], "seen": int(red.client.hget(f"tweetform:job:{job}:expanded", "n") or 0),
                    "queued": int(red.client.hget(f"tweetform:job:{job}", "queued") or 0), "pages": box.served(FOLLOWERS),
                })
                s = samples[-1]
                print(f"   t={s['t']:5.0f}s rss {['%.0f' % x for x in s['rss']]} MB, redis {s['used'] / 2**20:.0f} MB, "
                      f"seen {s['seen']}, queued {s['queued']}, pages {s['pages']}", flush=True)
            # key sizes while the workers are still alive (in-flight entries included)
            r = red.client
            sizes = []
            for key in sorted(k.decode() for k in r.scan_iter(match="tweetform:*", count=1000)):
                usage = r.memory_usage(key, samples=0) or 0
                sizes.append((key, r.type(key).decode(), members(r, key), usage))
            used_end = r.info("memory")["used_memory"]
            end = {"seen": int(r.hget(f"tweetform:job:{job}:expanded", "n") or 0), "queued": int(r.hget(f"tweetform:job:{job}", "queued") or 0), "pages": box.served(FOLLOWERS)}
        finally:
            for p in procs:
                p.stop(60)
            problems = [line for p in procs for line in p.problems()]
            for line in problems[:5]:
                print(f"   log: {line}", flush=True)
    finally:
        red.stop()
        box.stop()
    shutil.rmtree(workdir, ignore_errors=True)

    def short(key: str) -> str:
        return key.replace(f"tweetform:job:{job}:", "tweetform:job:<job>:").replace(f":dupefilter:{job}", ":dupefilter:<job>")

    big = [s for s in sizes if s[3] >= 4096]
    key_rows = [[f"`{short(k)}`", t, f"{m:,}", f"{u / 2**20:.1f} MB", f"{u / max(m, 1):.0f}"] for k, t, m, u in big]
    seen_keys = [s for s in sizes if ":expanded" in s[0] or ":level:" in s[0] and s[0].endswith(":users")
                 or ":dupefilter:" in s[0] or (":level:" in s[0] and s[0].endswith(":opened"))]
    per_seen = sum(s[3] for s in seen_keys) / max(end["seen"], 1)
    queue_bytes = next((s[3] for s in sizes if s[0] == queue_key), 0)
    per_queued = queue_bytes / max(end["queued"], 1)
    rss_rows = []
    for i in range(len(procs)):
        series = [s["rss"][i] for s in samples]
        first_half = series[: len(series) // 2] or series
        second_half = series[len(series) // 2:] or series
        rss_rows.append([f"worker {i + 1}", f"{start_rss[i]:.0f}", f"{statistics.median(series):.0f}", f"{max(series):.0f}",
                         f"{series[-1]:.0f}", f"{statistics.median(second_half) - statistics.median(first_half):+.0f}",
                         "met" if max(series) <= 300 else "missed"])
    timeline = ", ".join(f"{s['t']:.0f}s: {'/'.join('%.0f' % x for x in s['rss'])} MB, {s['seen']:,} seen, {s['queued']:,} queued"
                         for s in samples[:: max(1, len(samples) // 8)])
    text = "\n".join([
        "## P4 memory: Redis bytes per seen user and per queued request, worker RSS (issue 5)",
        "",
        "```",
        f".venv/bin/python bench/scale_bench.py{' --quick' if args.quick else ''} --part memory",
        "```",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}; sandbox `{box.command}`; "
        f"{args.mem_workers} × `scrapy worker --spiders {spider}` (defaults, 8 demo user credentials) on "
        f"`scrapy push {spider} --user-id {seed} --depth 2 --job {job}` (@jack's ~567,000 followers, each queued for "
        f"expansion), stopped after {args.mem_seconds:g} s; samples every {args.mem_every:g} s. "
        f"At the end: {end['pages']:,} pages fetched, {end['seen']:,} users seen (claimed), {end['queued']:,} requests queued; "
        f"Redis used_memory {base_mem / 2**20:.1f} → {used_end / 2**20:.1f} MB; {len(problems)} ERROR lines in the workers' logs.",
        "",
        md_table(["worker", "RSS start MB", "median MB", "max MB", "end MB", "2nd half − 1st half median MB", "≤ 300 MB"], rss_rows),
        "",
        f"- Redis bytes per seen user: **{per_seen:.0f}** (Σ MEMORY USAGE of the claims (expanded hash and its buckets), the per-level "
        f"users ZSET, the level's opened-requests SET and the dupe-filter SET ÷ seen users); per queued request: "
        f"**{per_queued:.0f}** (`{queue_key}` ÷ the job's queued requests: a member holds several); used_memory delta ÷ seen users: "
        f"{(used_end - base_mem) / max(end['seen'], 1):.0f} bytes.",
        f"- RSS over time (worker 1/2…): {timeline}.",
        "",
        "Keys ≥ 4 KB at the end (MEMORY USAGE … SAMPLES 0):",
        "",
        md_table(["key", "type", "members", "bytes", "bytes/member"], key_rows),
        "",
        f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, load {load0} → {loadavg()}; part took {time.time() - started:.0f} s.",
    ])
    print("\n" + text)
    report.append(("memory_bench", text))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--part", choices=["scale", "memory", "compare", "scripts", "all"], default="all")
    ap.add_argument("--pages", type=int, default=2000, help="--part scripts: pages measured")
    ap.add_argument("--warm-pages", type=int, default=2500, help="--part scripts: pages replayed first (the job and day fill up)")
    ap.add_argument("--page-ids", type=int, default=63, help="--part scripts: ids a page (63: about what a compare row claims a page)")
    ap.add_argument("--breakdown", action="store_true", help="--part compare: Redis time per script from the slow log (adds Redis CPU)")
    ap.add_argument("--compare", default="main", help="--part compare: the git ref whose worker is the 'before' row (default main)")
    ap.add_argument("--latency", type=float, default=0.5)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--seconds", type=float)
    ap.add_argument("--ramp", type=float, default=5.0)
    ap.add_argument("--mem-seconds", type=float)
    ap.add_argument("--mem-every", type=float, default=5.0)
    ap.add_argument("--mem-workers", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    args.rounds = args.rounds or (1 if args.quick else 2)
    args.seconds = args.seconds or (20.0 if args.quick else 30.0)
    args.mem_seconds = args.mem_seconds or (90.0 if args.quick else 240.0)
    out = args.out or (None if args.quick else RESULTS)
    report: list[tuple[str, str]] = []
    if args.part in ("scale", "all"):
        part_scale(args, report)
    if args.part in ("memory", "all"):
        part_memory(args, report)
    if args.part == "compare":
        part_compare(args, report)
    if args.part == "scripts":
        part_scripts(args, report)
    if out:
        for name, text in report:
            write_section(out, name, text)
        print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
