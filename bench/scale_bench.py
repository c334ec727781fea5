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

Marginal Redis CPU (``--part marginal``): the compare part's per-page figure at 16 pages/s also carries what
redis-server spends per second whatever the rate (serverCron, a worker's heartbeats and polls). Rows: Redis alone,
one worker with no job, then the compare job at each ``--rates`` sandbox latency (the same ``--window-pages`` pages of the crawl
at every rate); ``redis CPU = a × pages + b × seconds`` fitted by least squares (residuals printed), a the marginal
ms per page, 1000 / a the pages/s one Redis core carries. Then every command per page (INFO commandstats), the
worker's round trips by call site (counted in the worker by RedisTimer), the CPU outside any command, a round
trip's floor (PING, a no-op EVALSHA), and with ``--breakdown`` µs per script (slow log, a row not fitted).

Usage (repository root)::

    .venv/bin/python bench/scale_bench.py              # both parts: 2 rounds × 30 s rows, 240 s memory run (~12 min)
    .venv/bin/python bench/scale_bench.py --quick      # 1 round × 20 s rows, 90 s memory run (~5 min); writes only with --out
    .venv/bin/python bench/scale_bench.py --part scale|memory
    .venv/bin/python bench/scale_bench.py --part compare --compare REF   # redis-server CPU per page, REF's worker vs this one
    .venv/bin/python bench/scale_bench.py --part scripts --out /tmp/x.md  # µs inside each per-page script, quiet Redis
    .venv/bin/python bench/scale_bench.py --part marginal --rounds 2 --seconds 15 --breakdown --out /tmp/x.md
        # redis-server CPU = a × pages + b × seconds over Redis alone, an idle worker and the compare job at 4 page
        # rates; every command per page and the worker's round trips by call site

Results go to ``bench/results-distributed.md`` (sections ``scale_bench`` and ``memory_bench``; ``redis_cpu_compare``,
``redis_scripts``, ``redis_marginal`` for those parts unless ``--out`` says elsewhere).
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
EVERY_ENV = "BENCH_REDIS_TIMER_EVERY"  # seconds between RedisTimer's dumps (default 0.5)
SITES_ENV = "BENCH_REDIS_SITES"  # set: RedisTimer also counts each command by the tweetform code that sent it
_REDIS_TIME = {"calls": 0, "pipelines": 0, "seconds": 0.0}
_SITES: dict[str, int] = {}
_QUIET = ("/state/redis/scripts.py", "/state/redis/connection.py")  # wrappers: the caller is the site


def call_site(depth: int = 2) -> str:
    """The innermost tweetform frame that sent a Redis command (``tweetform/…/x.py:LINE function``), with its
    callers' up to three ("< caller < …"; any code's but redis-py's): scripts.py's and connection.py's wrappers skipped."""
    frame: Any = sys._getframe(depth)
    found: list[str] = []
    while frame is not None and len(found) < 4:
        name = frame.f_code.co_filename
        at = name.rfind("/tweetform/")
        if at >= 0 and not name.endswith(_QUIET) and not found:
            found.append(f"{name[at + 1:]}:{frame.f_lineno} {frame.f_code.co_name}")
        elif found and "/redis/" not in name.replace("/state/redis/", ""):
            found.append(frame.f_code.co_name)
        frame = frame.f_back
    return " < ".join(found) or "(no tweetform frame)"


def command_label(args: tuple[Any, ...]) -> str:
    """``EVALSHA <sha>`` for a script call (named later, from the checkout's scripts), else the command's name."""
    name = (args[0].decode() if isinstance(args[0], bytes) else str(args[0])).upper() if args else "?"
    if name == "SCRIPT" and len(args) > 1:
        return f"SCRIPT {str(args[1]).upper()}"
    if name == "EVALSHA" and len(args) > 1:
        return f"EVALSHA {args[1].decode() if isinstance(args[1], bytes) else args[1]}"
    return name


def count_sites(commands: list[tuple[Any, ...]], pipeline: bool) -> None:
    """Count ``commands`` under ``kind\tlabel\tsite``: kind "c" a command sent alone (one round trip), "p" a command
    inside a pipeline, "P" the pipeline itself (one round trip; its label lists its commands' labels)."""
    site = call_site(3)
    labels = [command_label(args) for args in commands]
    keys = [f"{'p' if pipeline else 'c'}\t{label}\t{site}" for label in labels]
    if pipeline:
        keys.append(f"P\t{'+'.join(dict.fromkeys(labels))}\t{site}")
    for key in keys:
        _SITES[key] = _SITES.get(key, 0) + 1


class RedisTimer:
    """Scrapy extension for this benchmark (``-s EXTENSIONS={"bench.scale_bench.RedisTimer": 0}``): wall time
    this process spends blocked in Redis calls and their round trips (each command, or each pipeline, is
    one round trip), written to ``$BENCH_REDIS_TIMER_DIR/<pid>.json`` twice a second (every ``$BENCH_REDIS_TIMER_EVERY``
    s if set). redis-py's SCRIPT EXISTS before a pipeline with a ``script(client=pipe)`` call counts too. With ``$BENCH_REDIS_SITES``
    set, also each command sent (a pipeline's one by one) by command and call site (:func:`call_site`, a few µs of
    this process's CPU a command; nothing more reaches Redis)."""

    def __init__(self, crawler: Any) -> None:
        import redis.client
        from scrapy import signals
        from twisted.internet import task

        self.path = Path(os.environ[TIMER_ENV]) / f"{os.getpid()}.json"
        sites = bool(os.environ.get(SITES_ENV))
        if not getattr(redis.client.Redis, "_bench_timed", False):
            plain, pipelined = redis.client.Redis.execute_command, redis.client.Pipeline.execute

            def timed(original: Any, counter: str, pipeline: bool) -> Any:
                def call(self: Any, *a: Any, **kw: Any) -> Any:
                    if sites:
                        commands = [entry[0] for entry in self.command_stack] if pipeline else [a]
                        if commands:
                            count_sites(commands, pipeline)
                    t = time.perf_counter()
                    try:
                        return original(self, *a, **kw)
                    finally:
                        _REDIS_TIME[counter] += 1
                        _REDIS_TIME["seconds"] += time.perf_counter() - t
                return call

            execute_command = timed(plain, "calls", False)
            execute = timed(pipelined, "pipelines", True)
            # a pipeline's command sent at once: redis-py's SCRIPT EXISTS before a pipeline holding a
            # ``script(client=pipe)`` call (one round trip of its own), or a command under WATCH
            immediate_execute_command = timed(redis.client.Pipeline.immediate_execute_command, "calls", False)

            redis.client.Redis.execute_command = execute_command  # type: ignore[method-assign]
            redis.client.Pipeline.execute = execute  # type: ignore[method-assign]
            redis.client.Pipeline.immediate_execute_command = immediate_execute_command  # type: ignore[method-assign]
            redis.client.Redis._bench_timed = True  # type: ignore[attr-defined]
        self.loop = task.LoopingCall(self.dump)
        crawler.signals.connect(self.opened, signal=signals.spider_opened)
        crawler.signals.connect(self.dump, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Any) -> "RedisTimer":
        return cls(crawler)

    def opened(self, spider: Any) -> None:
        self.loop.start(float(os.environ.get(EVERY_ENV) or 0.5))

    def dump(self, *args: Any, **kw: Any) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({**_REDIS_TIME, "t": time.time(), **({"sites": _SITES} if _SITES else {})}))
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
            "cpu": info["used_cpu_sys"] + info["used_cpu_user"], "mem": info["used_memory"],
            "reads": info.get("total_reads_processed", 0), "net_in": info.get("total_net_input_bytes", 0),
            "net_out": info.get("total_net_output_bytes", 0)}


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


def stop_all(procs: list[Any]) -> None:
    for p in procs:
        p.stop()


def check_row(procs: list[Any], label: str, out: Any, alive: bool) -> list[str]:
    """A row's log problems (the first printed); a process that ended during the measurement voids the row."""
    problems = [line for p in procs for line in p.problems()]
    for line in problems[:5]:
        print(f"   log: {line}", flush=True)
    if not alive:
        raise RuntimeError(f"{label}: a process ended during the measurement; see {out}")
    return problems


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
        stop_all(procs)
    problems = check_row(procs, label, out, alive)
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
    args.compare = args.compare or "main"
    old = checkout(args.compare, workdir)
    shutil.copy(Path(__file__), old / "bench" / "scale_bench.py")  # both rows counted by this RedisTimer (round trips alike)
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
            return [templates, 32, 0, *push_entries(items, lambda e: rkeys.queue("friends", e), runs)]

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


def least_squares(rows: list[tuple[float, float, float]]) -> tuple[float, float, list[float]]:
    """``y = a·x1 + b·x2`` (no intercept) fitted to rows ``(x1, x2, y)`` by least squares: a, b and each row's
    residual (y − fit). NaNs when the rows cannot tell a from b (e.g. every row with the same x1/x2)."""
    s11 = sum(x1 * x1 for x1, _, _ in rows)
    s12 = sum(x1 * x2 for x1, x2, _ in rows)
    s22 = sum(x2 * x2 for _, x2, _ in rows)
    t1 = sum(x1 * y for x1, _, y in rows)
    t2 = sum(x2 * y for _, x2, y in rows)
    det = s11 * s22 - s12 * s12
    if abs(det) < 1e-12 * max(s11 * s22, 1e-30):
        return float("nan"), float("nan"), [float("nan")] * len(rows)
    a, b = (t1 * s22 - t2 * s12) / det, (s11 * t2 - s12 * t1) / det
    return a, b, [y - a * x1 - b * x2 for x1, x2, y in rows]


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


def marginal_row(label: str, box: SandboxProcess, red: RedisServer, creds: list[dict[str, str]], seed: int, *, workers: int,
                 job: bool, latency: float, conc: int, from_pages: int, window_pages: int, seconds: float, max_seconds: float,
                 ramp: float, workdir: Path, tag: str, code: Path | None, slowlog: dict[str, str] | None = None) -> dict[str, Any]:
    """One row of ``--part marginal``: redis-server CPU (``/proc/<pid>/task/*/schedstat``, so the bench's own INFO
    before and after stay out of it) over a window with nothing of the bench's reaching Redis. ``workers`` 0: Redis
    alone; ``job`` False: the workers run with nothing queued, ``seconds`` s after a ``ramp``; ``job`` True: the
    compare job, the window from the ``from_pages``-th page served to ``window_pages`` more (the same stretch of
    the crawl at any rate), ``max_seconds`` at most. Each worker counts its commands by call site (RedisTimer).
    ``slowlog`` (script SHA1 -> name): every command in the slow log during the window, µs per script (this costs
    Redis CPU of its own: such a row is not fitted)."""
    box.reset()
    box.set_faults(latency=latency)
    red.flush()
    out = workdir / f"{tag}-{slug(label)}"
    timers = out / "timers"
    timers.mkdir(parents=True)
    env = tf_env(box, out, creds, red.url)
    env.update({TIMER_ENV: str(timers), SITES_ENV: "1", EVERY_ENV: "0.1"})
    settings = ["-s", f"CONCURRENT_REQUESTS={conc}",
                "-s", 'EXTENSIONS={"bench.scale_bench.RedisTimer": 0, "tweetform.progress.ProgressExtension": 500}']
    procs = [Proc(["worker", "--spiders", "friends", *settings], env, out / f"worker{i}.log", code) for i in range(workers)]
    try:
        if procs:
            wait_registered(red.client, [p.pid for p in procs])
        if job:
            push(env, "friends", "--user-id", str(seed), "--depth", "3", "--job", f"marginal-{tag}-{slug(label)}")
            deadline = time.time() + 180
            while box.served(FOLLOWING) < from_pages:
                if time.time() > deadline or any(p.proc.poll() is not None for p in procs):
                    raise RuntimeError(f"{label}: {from_pages} pages not served; see {out}")
                time.sleep(0.05)
        else:
            time.sleep(ramp)
        if slowlog is not None:
            red.client.config_set("slowlog-max-len", 1_000_000)
            red.client.config_set("slowlog-log-slower-than", 0)
            red.client.slowlog_reset()
        r0, s0 = redis_snapshot(red), box.served(FOLLOWING)
        k0 = [read_timer(timers, p.pid) for p in procs]
        c0 = [process_cpu(p.pid) for p in procs]
        t0, rc0 = time.time(), process_cpu(red.proc.pid)
        while True:
            time.sleep(0.05 if job else 0.5)
            if job and (box.served(FOLLOWING) >= s0 + window_pages or time.time() > t0 + max_seconds):
                break
            if not job and time.time() >= t0 + seconds:
                break
        rc1, t1 = process_cpu(red.proc.pid), time.time()
        s1 = box.served(FOLLOWING)
        c1 = [process_cpu(p.pid) for p in procs]
        time.sleep(0.15)  # each worker's next dump covers the window's end
        k1 = [read_timer(timers, p.pid) for p in procs]
        r1 = redis_snapshot(red)
        logged = {}
        if slowlog is not None:
            red.client.config_set("slowlog-log-slower-than", 10000)
            logged = script_times(red, slowlog)
            red.client.slowlog_reset()
        alive = all(p.proc.poll() is None for p in procs)
    finally:
        stop_all(procs)
    problems = check_row(procs, label, out, alive)
    secs = t1 - t0
    sites: dict[str, float] = {}
    for a, b in zip(k0, k1):  # a dump's counts scaled from its own span to the window's
        scale = secs / max(b["t"] - a["t"], 1e-9)
        for key, n in b.get("sites", {}).items():
            sites[key] = sites.get(key, 0.0) + (n - a.get("sites", {}).get(key, 0)) * scale
    return {
        "label": label, "workers": workers, "job": job, "latency": latency, "conc": conc, "pages": s1 - s0, "secs": secs,
        "cpu": rc1 - rc0, "info_cpu": r1["cpu"] - r0["cpu"], "worker_cpu": sum(b - a for a, b in zip(c0, c1)),
        "cmds": {k: r1["cmds"].get(k, 0) - r0["cmds"].get(k, 0) for k in r1["cmds"]},
        "usec": {k: r1["usec"].get(k, 0) - r0["usec"].get(k, 0) for k in r1["usec"]},
        "reads": r1["reads"] - r0["reads"], "net_in": r1["net_in"] - r0["net_in"], "net_out": r1["net_out"] - r0["net_out"],
        "sites": {k: v for k, v in sites.items() if v}, "problems": len(problems), "scripts": logged,
    }


def round_trip_floor(red: RedisServer, n: int = 2000) -> dict[str, float]:
    """redis-server CPU µs of one round trip from the bench on a quiet Redis (no worker): a PING, and an EVALSHA of
    a script doing nothing given 1 key and 64 ten-byte arguments (a billed-ids or claim call's shape); how much of
    the latter commandstats counts inside the command."""
    r = red.client
    sha = r.script_load("return 0")
    args = [f"{1_000_000_000 + i}" for i in range(64)]
    out = {}
    for name, call in (("PING", lambda: r.ping()), ("EVALSHA, 64 args", lambda: r.evalsha(sha, 1, "k", *args))):
        r.config_resetstat()
        c0 = process_cpu(red.proc.pid)
        for _ in range(n):
            call()
        c1 = process_cpu(red.proc.pid)
        stats = r.info("commandstats")
        inside = stats.get("cmdstat_ping" if name == "PING" else "cmdstat_evalsha", {"usec": 0})["usec"]
        out[name] = 1e6 * (c1 - c0) / n
        out[f"{name} inside"] = inside / n
    return out


def site_label(label: str, names: dict[str, str]) -> str:
    """A counted label with its scripts named: ``EVALSHA <sha1>`` -> ``EVALSHA queue_pop``."""
    return re.sub(r"EVALSHA ([0-9a-f]{40})", lambda m: f"EVALSHA {names.get(m.group(1), m.group(1)[:8])}", label)


def sent_by_workers(run: dict[str, Any], command: str) -> float:
    """How many ``command`` (INFO commandstats' name) the row's workers sent themselves, alone or pipelined."""
    total = 0.0
    for key, n in run["sites"].items():
        kind, label, _ = key.split("\t", 2)
        if kind in ("c", "p") and label.split(" ")[0].lower() == command.split("|")[0]:
            total += n
    return total


def split_cpu(run: dict[str, Any]) -> tuple[float, float, float]:
    """A row's redis-server CPU in ms: inside EVALSHA (scripts, commandstats µs), inside the other commands the workers
    sent (their share of each command's µs, by calls), and outside any command (reading, parsing and answering round
    trips, the event loop, serverCron)."""
    scripts_ms = run["usec"].get("evalsha", 0) / 1000
    other = sum(run["usec"].get(cmd, 0) * min(1.0, sent_by_workers(run, cmd) / calls) / 1000
                for cmd, calls in run["cmds"].items() if calls and cmd != "evalsha")
    return scripts_ms, other, 1000 * run["cpu"] - scripts_ms - other


def breakdown_tables(mine: list[dict[str, Any]], labels: list[str], names: dict[str, str]) -> list[str]:
    """One checkout's command and call-site tables of ``--part marginal`` (``labels``: its no-job row, then its rates)."""
    idle, rated = labels[0], labels[1:]
    by = {label: [r for r in mine if r["row"] == label] for label in labels}
    workers = [r for r in mine if r["workers"]]

    def per(label: str, value: Any) -> float:
        """Σ value(row) ÷ Σ pages over the label's rounds (÷ Σ seconds for the no-job row)."""
        rs = by[label]
        return sum(value(r) for r in rs) / (sum(r["pages"] for r in rs) or sum(r["secs"] for r in rs))

    ref, fast = rated[0], rated[-1]
    out = ["", f"Where the time goes (commandstats µs are Redis's own time inside each command; a script's commands count "
                f"inside its EVALSHA too). Per row, redis-server CPU ms/page = inside scripts + inside the other commands the "
                f"worker sent + outside any command:", ""]
    split_rows = []
    for label in rated:
        parts = [per(label, lambda r, i=i: split_cpu(r)[i]) for i in range(3)]
        trips = per(label, lambda r: sum(n for k, n in r["sites"].items() if k[0] in "cP"))
        split_rows.append([label, f"{per(label, lambda r: 1000 * r['cpu']):.3f}", *(f"{x:.3f}" for x in parts),
                           f"{trips:.2f}", f"{per(label, lambda r: r['reads']):.2f}", f"{1000 * parts[2] / max(trips, 1e-9):.1f}",
                           f"{per(label, lambda r: r['net_in']):,.0f} / {per(label, lambda r: r['net_out']):,.0f}"])
    idle_parts = [per(idle, lambda r, i=i: split_cpu(r)[i]) for i in range(3)]
    idle_trips = per(idle, lambda r: sum(n for k, n in r["sites"].items() if k[0] in "cP"))
    split_rows.append([f"{idle} (per s)", f"{per(idle, lambda r: 1000 * r['cpu']):.3f}", *(f"{x:.3f}" for x in idle_parts),
                       f"{idle_trips:.2f}", f"{per(idle, lambda r: r['reads']):.2f}", "–",
                       f"{per(idle, lambda r: r['net_in']):,.0f} / {per(idle, lambda r: r['net_out']):,.0f}"])
    out.append(md_table(["row", "redis CPU ms/page", "in scripts (EVALSHA)", "in other worker commands", "outside commands",
                         "worker round trips/page (counted in the worker)", "Redis reads/page", "µs outside commands per round trip",
                         "bytes in / out per page"], split_rows))
    a, b, _ = least_squares([(r["pages"], r["secs"], split_cpu(r)[2]) for r in workers])
    a_in, b_in, _ = least_squares([(r["pages"], r["secs"], split_cpu(r)[0] + split_cpu(r)[1]) for r in workers])
    out += ["", f"Fitted the same way: inside commands a = {a_in:.3f} ms/page, b = {b_in:.3f} ms/s; outside commands "
                f"a = {a:.3f} ms/page, b = {b:.2f} ms/s.", ""]

    # INFO: the bench's snapshot before the window (its CPU is outside the window's figure)
    commands = sorted({c for r in mine for c, n in r["cmds"].items() if n and c != "info"},
                      key=lambda c: -per(ref, lambda r: r["usec"].get(c, 0)))
    rows = []
    for cmd in commands:
        calls = per(ref, lambda r: r["cmds"].get(cmd, 0))
        sent = per(ref, lambda r: sent_by_workers(r, cmd))
        usec = per(ref, lambda r: r["usec"].get(cmd, 0))
        rows.append([cmd, f"{calls:.2f}", f"{usec:.1f}", f"{usec / calls:.2f}" if calls else "–", f"{sent:.2f}",
                     f"{calls - sent:.2f}", f"{per(fast, lambda r: r['cmds'].get(cmd, 0)):.2f}",
                     f"{per(idle, lambda r: r['cmds'].get(cmd, 0)):.2f}", f"{per(idle, lambda r: r['usec'].get(cmd, 0)):.1f}"])
    out += [f"Every command (INFO commandstats; the bench's own INFO left out: it ran before the window), per page at {ref} "
            f"(all rounds), per page at {fast}, per second with no job:", "",
            md_table(["command", f"calls/page ({ref})", "µs/page", "µs/call", "sent by the worker /page", "run inside scripts /page",
                      f"calls/page ({fast})", "calls/s, no job", "µs/s, no job"], rows)]

    keys = {k for r in mine for k in r["sites"] if k[0] in "cP"}
    site_rows = []
    for key in keys:
        kind, label, site = key.split("\t", 2)
        al, be, _ = least_squares([(r["pages"], r["secs"], r["sites"].get(key, 0.0)) for r in workers])
        at = [per(label_, lambda r: r["sites"].get(key, 0.0)) for label_ in rated]
        idle_rate = per(idle, lambda r: r["sites"].get(key, 0.0))
        if max(at) < 0.005 and idle_rate < 0.01:
            continue
        what = f"pipeline [{site_label(label, names)}]" if kind == "P" else site_label(label, names)
        site_rows.append((-at[0], [what, f"`{site}`", *(f"{x:.3f}" for x in at), f"{idle_rate:.2f}", f"{al:.3f}", f"{be:.2f}"]))
    site_rows.sort(key=lambda x: x[0])
    out += ["", "Round trips the worker made (each command sent alone, each pipeline), by call site (RedisTimer in the worker: "
                "the innermost tweetform frame, < its caller); fit over the worker rows: calls = α × pages + β × seconds:", "",
            md_table(["round trip", "call site", *(f"per page ({label})" for label in rated), "per s, no job",
                      "α per page", "β per s"], [row for _, row in site_rows])]
    return out


def slowlog_table(rows: list[dict[str, Any]], names: dict[str, str]) -> list[str]:
    """``--part marginal --breakdown``: µs per page inside each script (slow log, every command) and its call sites."""
    if not rows:
        return []
    pages = sum(r["pages"] for r in rows)
    total: dict[str, list[float]] = {}
    for r in rows:
        for script, (us, calls) in r["scripts"].items():
            t = total.setdefault(script, [0.0, 0.0])
            t[0] += us
            t[1] += calls
    cpu = 1000 * sum(r["cpu"] for r in rows) / pages
    out = []
    scripts = set(names.values())
    for script, (us, calls) in sorted(total.items(), key=lambda kv: -kv[1][0]):
        if script not in scripts:
            continue  # a command: the ones scripts run are in the commandstats table, the worker's own are few
        sites: dict[str, float] = {}
        for r in rows:
            for key, n in r["sites"].items():
                kind, label, site = key.split("\t", 2)
                if kind in ("c", "p") and label.startswith("EVALSHA ") and names.get(label[8:]) == script:
                    sites[site] = sites.get(site, 0.0) + n
        where = "; ".join(f"`{site}` {n / pages:.2f}" for site, n in sorted(sites.items(), key=lambda kv: -kv[1]))
        out.append([script, f"{us / pages:.1f}", f"{calls / pages:.2f}", f"{us / max(calls, 1):.1f}", where or "–"])
    return ["", f"Inside each script, per page (slow log on, every command logged; {rows[0]['row']}, {len(rows)} round(s), "
                f"{pages} pages; redis-server CPU {cpu:.3f} ms/page in these rows, the slow log's own cost included):", "",
            md_table(["script", "µs/page", "calls/page", "µs/call", "call sites (calls/page)"], out)]


def part_marginal(args: argparse.Namespace, report: list[tuple[str, str]]) -> None:
    """What a page adds to redis-server's CPU, apart from what it spends per second whatever the page rate
    (serverCron, the workers' heartbeats and polls): Redis alone, a worker with no job, and the compare job at
    ``--rates`` page rates (sandbox latency × concurrency), rows interleaved over ``--rounds``; fit
    ``redis CPU = a × pages + b × seconds`` over the worker rows. Then every command per page (INFO commandstats),
    which of them the workers sent and from where (call sites counted in the workers), and what is left to the
    scripts. ``--compare REF``: REF's worker in rows of its own (this file's RedisTimer copied into its tree)."""
    started, load0 = time.time(), loadavg()
    rates = []
    for spec in args.rates.split(","):
        lat, _, conc = spec.strip().partition("x")
        rates.append((float(lat), int(conc or args.concurrency)))
    box = SandboxProcess("--users", "100000", "--seed", "1", "--window", "900", "--limit", f"{FOLLOWING}={BIG}",
                         "--latency", str(rates[0][0]), python=PY, cwd=ROOT)
    red = RedisServer()
    workdir = Path(tempfile.mkdtemp(prefix="scale-marginal-"))
    creds = demo_credentials(*[f"demo-user-{i}" for i in range(1, 9)])
    codes: list[tuple[str, Path | None]] = [("this checkout", None)]
    if args.compare:
        old = checkout(args.compare, workdir)
        shutil.copy(Path(__file__), old / "bench" / "scale_bench.py")  # its workers count call sites too
        codes.insert(0, (args.compare, old))
    plan: list[dict[str, Any]] = [{"code": "", "path": None, "label": "Redis alone", "workers": 0, "job": False,
                                   "latency": rates[0][0], "conc": args.concurrency}]
    for name, path in codes:
        plan.append({"code": name, "path": path, "label": "worker, no job", "workers": 1, "job": False,
                     "latency": rates[0][0], "conc": args.concurrency})
        plan += [{"code": name, "path": path, "label": f"{lat:g} s × {conc}", "workers": 1, "job": True, "latency": lat,
                  "conc": conc} for lat, conc in rates]
    names: dict[str, str] = {}  # script SHA1 -> name, of every checkout measured
    for _, path in codes:
        names.update(script_names(path))
    runs: list[dict[str, Any]] = []
    floors: list[dict[str, float]] = []
    try:
        seed = box.get("/_sandbox/examples")["many_friends"][0]
        for rnd in range(args.rounds):
            for row in (plan if rnd % 2 == 0 else plan[::-1]):
                name = f"{row['code']}: {row['label']}" if row["code"] else row["label"]
                print(f"== round {rnd + 1} {name} ...", flush=True)
                res = marginal_row(name, box, red, creds, seed, workers=row["workers"], job=row["job"], latency=row["latency"],
                                   conc=row["conc"], from_pages=args.from_pages, window_pages=args.window_pages,
                                   seconds=args.seconds, max_seconds=3 * args.seconds, ramp=args.ramp, workdir=workdir,
                                   tag=f"r{rnd}", code=row["path"])
                res.update(code=row["code"], row=row["label"], round=rnd + 1, slowlog=False)
                runs.append(res)
                rate = f"{1000 * res['cpu'] / res['secs']:.2f} ms/s"
                if res["pages"]:
                    print(f"   {res['pages']} pages in {res['secs']:.1f} s ({res['pages'] / res['secs']:.1f} pages/s): redis-server CPU "
                          f"{1000 * res['cpu']:.1f} ms = {rate} = {1000 * res['cpu'] / res['pages']:.3f} ms/page, "
                          f"{res['reads'] / res['pages']:.1f} reads/page", flush=True)
                else:
                    print(f"   {res['secs']:.1f} s: redis-server CPU {1000 * res['cpu']:.1f} ms = {rate}, {res['reads'] / res['secs']:.1f} "
                          f"reads/s, {sum(res['cmds'].values()) / res['secs']:.1f} commands/s", flush=True)
            for name, path in codes if args.breakdown else []:  # per-script µs from the slow log: not fitted
                label = f"{rates[0][0]:g} s × {rates[0][1]}, slow log on"
                print(f"== round {rnd + 1} {name}: {label} ...", flush=True)
                res = marginal_row(f"{name}: {label}", box, red, creds, seed, workers=1, job=True, latency=rates[0][0],
                                   conc=rates[0][1], from_pages=args.from_pages, window_pages=args.window_pages,
                                   seconds=args.seconds, max_seconds=3 * args.seconds, ramp=args.ramp, workdir=workdir,
                                   tag=f"r{rnd}", code=path, slowlog=names)
                res.update(code=name, row=label, round=rnd + 1, slowlog=True)
                runs.append(res)
            red.flush()
            floors.append(round_trip_floor(red))
            print("   round trip floor, redis-server CPU µs: " + ", ".join(f"{k} {v:.1f}" for k, v in floors[-1].items()), flush=True)
    finally:
        red.stop()
        box.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    sections = [
        "## Lean Redis: marginal redis-server CPU per page and fixed CPU per second (issue 15 §4)",
        "",
        "```",
        f".venv/bin/python bench/scale_bench.py --part marginal --rates {args.rates} --rounds {args.rounds} --seconds {args.seconds:g} "
        f"--from-pages {args.from_pages} --window-pages {args.window_pages}" + (f" --compare {args.compare}" if args.compare else ""),
        "```",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}; sandbox `{box.command}` (its latency set per row); "
        f"the compare job (`scrapy push friends --user-id {seed} --depth 3`, a fresh job on a flushed Redis each row) taken by 1 "
        f"`scrapy worker --spiders friends -s CONCURRENT_REQUESTS=<conc>`; a job row measures from its {args.from_pages}th page served "
        f"to {args.window_pages} more (the same stretch of the crawl at every rate; {3 * args.seconds:g} s at most), the idle rows "
        f"{args.seconds:g} s after {args.ramp:g} s. redis-server CPU from /proc/<pid>/task/*/schedstat; nothing of the bench's "
        f"reaches Redis inside a window. Rows interleaved over {args.rounds} round(s) (odd rounds reversed).",
    ]
    alone = [r for r in runs if r["workers"] == 0]
    floor = statistics.median(1000 * r["cpu"] / r["secs"] for r in alone)
    for name, _ in codes:
        mine = [r for r in runs if r["code"] == name and not r["slowlog"]]
        labels = list(dict.fromkeys(r["row"] for r in mine))
        fitted = [r for r in mine if r["workers"]]
        a, b, res = least_squares([(r["pages"], r["secs"], 1000 * r["cpu"]) for r in fitted])
        busy = [r for r in fitted if r["job"]]
        idle_rows = [r for r in fitted if not r["job"]]
        idle_b = 1000 * sum(r["cpu"] for r in idle_rows) / sum(r["secs"] for r in idle_rows)
        a2, b2, res2 = least_squares([(r["pages"], r["secs"], 1000 * r["cpu"]) for r in busy])
        def plain(label: str) -> float:
            rs = [r for r in mine if r["row"] == label]
            return 1000 * sum(r["cpu"] for r in rs) / max(sum(r["pages"] for r in rs), 1)

        rows = []
        for label in ["Redis alone", *labels]:
            rs = alone if label == "Redis alone" else [r for r in mine if r["row"] == label]
            pages, secs, cpu = sum(r["pages"] for r in rs), sum(r["secs"] for r in rs), sum(r["cpu"] for r in rs)
            rows.append([label, " / ".join(f"{r['pages'] / r['secs']:.1f}" for r in rs), " / ".join(f"{r['secs']:.1f}" for r in rs),
                         " / ".join(f"{1000 * r['cpu'] / r['secs']:.2f}" for r in rs),
                         " / ".join(f"{1000 * r['cpu'] / r['pages']:.3f}" for r in rs) if pages else "–",
                         f"{1000 * cpu / pages:.3f}" if pages else "–",
                         f"{sum(r['reads'] for r in rs) / pages:.2f}" if pages else f"{sum(r['reads'] for r in rs) / secs:.1f}/s",
                         f"{sum(sum(r['cmds'].values()) for r in rs) / pages:.0f}" if pages else
                         f"{sum(sum(r['cmds'].values()) for r in rs) / secs:.1f}/s",
                         f"{(1000 * cpu - idle_b * secs) / pages:.3f}" if pages else "–",
                         f"{(1000 * cpu - b * secs) / pages:.3f}" if pages else "–",
                         f"{1000 * sum(r['worker_cpu'] for r in rs) / pages:.1f}" if pages else "–"])
        resid = ", ".join(f"{r['row']} r{r['round']} {e:+.1f} ({e / (1000 * r['cpu']):+.0%})" for r, e in zip(fitted, res))
        resid2 = ", ".join(f"{r['row']} r{r['round']} {e:+.1f} ({e / (1000 * r['cpu']):+.0%})" for r, e in zip(busy, res2))
        sections += [
            "",
            f"### {name}",
            "",
            md_table(["row", "pages/s per round", "s measured", "redis CPU ms/s", "redis CPU ms/page (plain)", "ms/page, all rounds",
                      "Redis reads (round trips) / page", "Redis cmds/page (Lua's included)",
                      "ms/page less the idle worker's ms/s × seconds", "ms/page less the fit's b × seconds",
                      "worker CPU ms/page"], rows),
            "",
            f"- Fit over the worker rows (no job and job), redis CPU ms = a × pages + b × seconds: **a = {a:.3f} ms/page marginal, "
            f"b = {b:.2f} ms/s fixed** (measured: the worker with no job {idle_b:.2f} ms/s, Redis alone {floor:.2f} ms/s); "
            f"residuals ms: {resid}.",
            f"- Fit over the job rows only: a = {a2:.3f} ms/page, b = {b2:.2f} ms/s; residuals ms: {resid2}.",
            f"- Implied saturation of one Redis (one core): 1000 / a = **{1000 / a:.0f} pages/s** "
            f"((1000 − b) / a = {(1000 - b) / a:.0f} with one worker's fixed cost); 1000 ÷ the plain ms/page says "
            + ", ".join(f"{1000 / plain(label):.0f} at {label}" for label in labels[1:]) + ".",
        ]
        sections += breakdown_tables(mine, labels, names)
        sections += slowlog_table([r for r in runs if r["code"] == name and r["slowlog"]], names)
    floor_line = ", ".join(f"{k} {statistics.median(f[k] for f in floors):.1f}" for k in floors[0])
    sections += ["", f"A round trip's floor on this Redis, quiet (the bench's client, 2,000 calls one at a time, medians of the "
                     f"rounds), redis-server CPU µs per call, and of it inside the command (commandstats): {floor_line}."]
    sections += ["", f"Machine: {os.cpu_count()} CPUs (shared), load {load0} → {loadavg()}; part took {time.time() - started:.0f} s."]
    text = "\n".join(sections)
    print("\n" + text)
    report.append(("redis_marginal", text))


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
    ap.add_argument("--part", choices=["scale", "memory", "compare", "scripts", "marginal", "all"], default="all")
    ap.add_argument("--rates", default="0.5,0.2,0.1,0.05", help="--part marginal: the job rows, sandbox latency s [x concurrency], comma-separated")
    ap.add_argument("--from-pages", type=int, default=100, help="--part marginal: a job row's window starts at this page served")
    ap.add_argument("--window-pages", type=int, default=600, help="--part marginal: pages in a job row's window")
    ap.add_argument("--pages", type=int, default=2000, help="--part scripts: pages measured")
    ap.add_argument("--warm-pages", type=int, default=2500, help="--part scripts: pages replayed first (the job and day fill up)")
    ap.add_argument("--page-ids", type=int, default=63, help="--part scripts: ids a page (63: about what a compare row claims a page)")
    ap.add_argument("--breakdown", action="store_true", help="--part compare: Redis time per script from the slow log (adds Redis CPU); "
                                                                  "--part marginal: one more job row a round with it (not fitted)")
    ap.add_argument("--compare", help="--part compare: the git ref whose worker is the 'before' row (default main); "
                                       "--part marginal: also REF's worker, in rows of its own")
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
    if args.part == "marginal":
        part_marginal(args, report)
    if out:
        for name, text in report:
            write_section(out, name, text)
        print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
