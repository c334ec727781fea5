"""Redis time of taking a request and settling its quota (issue 15 §4): ``queue_pop.lua`` and
``quota_answered.lua`` of another git ref against this checkout's, side by side on a quiet redis-server.

``bench/scale_bench.py --part compare`` measures a whole worker; the pop's share there (~0.1 ms of ~1.1 ms
a page) is within its noise between rounds on a shared machine. Here only the two scripts run, on a
dedicated redis-server started for the purpose, in the state the compare bench's worker meets: a friends
endpoint with ``--lanes`` credential lanes (limits 10^9, windows ending at different times, one
reservation in flight each), a running job, its queue of members holding ``--per`` packed first pages each
(a page's claimed users, ``queue_push.lua`` runs). Per round and code (rows interleaved, order alternating,
each on a flushed Redis): ``--pops`` pops (``queue_pop.lua`` picks the lane, moves the request into
in-flight and reserves the quota), then an answer per pop (``quota_answered.lua``, the window's headers, one
fewer remaining each). Figures: EVALSHA µs per call and commands run inside it per call, from ``INFO
commandstats`` (no slow log: it costs more than the scripts), the median over rounds.

Usage (repository root)::

    .venv/bin/python bench/pop_bench.py --compare main            # 5 rounds × 3,000 pops
    options: --rounds N --pops N --lanes 8 --per 37
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tweetform.state.redis import keys  # noqa: E402
from tweetform.testing.servers import RedisServer  # noqa: E402

ENDPOINT = "/2/users/:id/following"
SCRIPTS = ("queue_pop", "quota_answered")


def sources(ref: str | None) -> dict[str, str]:
    """The two scripts of ``ref`` (``git show``) or of this checkout, ``-- include:`` resolved as scripts.py does."""
    def text(name: str) -> str:
        if ref is None:
            return (ROOT / "tweetform" / "state" / "redis" / "lua" / f"{name}.lua").read_text()
        return subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:tweetform/state/redis/lua/{name}.lua"],
                              check=True, capture_output=True, text=True).stdout

    def source(name: str) -> str:
        return "\n".join(source(line.removeprefix("-- include: ").strip()) if line.startswith("-- include: ") else line
                         for line in text(name).splitlines()) + "\n"

    return {name: source(name) for name in SCRIPTS}


def phase(r: Any, run: Any) -> tuple[float, float]:
    """(EVALSHA µs per call, commands inside per call) of what ``run()`` sends."""
    r.config_resetstat()
    run()
    stats = r.info("commandstats")
    evalsha = stats["cmdstat_evalsha"]
    inside = sum(v["calls"] for k, v in stats.items() if k not in ("cmdstat_evalsha", "cmdstat_config", "cmdstat_info"))
    return evalsha["usec_per_call"], inside / evalsha["calls"]


def row(red: RedisServer, code: dict[str, str], pops: int, lanes: int, per: int) -> dict[str, float]:
    r = red.client
    r.flushall()
    pop, answered = r.register_script(code["queue_pop"]), r.register_script(code["quota_answered"])
    job, queue = "bench", keys.queue("friends", ENDPOINT)
    run_id = str(r.info("server")["run_id"])  # the job began under this redis-server (jobs.py stamps it)
    r.hset(keys.job(job), mapping={"state": "running", "created": 1, "queued": pops + per, "run": run_id})
    # the pop's arguments before the endpoints: since the run id came (ARGV[7]), one more
    before = ["worker", "lease", keys.job_templates(), 1.0, 90] + ([run_id] if "ARGV[7]" in code["queue_pop"] else [])
    now = int(r.time()[0])
    lane_keys, windows = [], []  # per lane: [reset, remaining] as its answers say
    for i in range(lanes):
        h = keys.quota(f"demo-user-{i + 1}:user", ENDPOINT)
        windows.append([now + 300 + 50 * ((i * 5) % lanes), 10**9 - 10])
        r.hset(h, mapping={"limit": 10**9, "reset": windows[-1][0], "srem": windows[-1][1]})
        r.zadd(h + ":inflight", {uuid.uuid4().hex: now + 90})
        lane_keys += [h, h + ":inflight"]
    for m in range(pops // per + 1):
        r.zadd(queue, {f"{job}\t{m * per + 1}\t" + "\n".join(f"~{100000 + m * per + k},2" for k in range(per)): m})
    script_keys = [keys.in_flight("friends"), keys.deliveries("friends"), queue, *lane_keys]
    taken: list[tuple[int, str]] = []

    def pops_() -> None:
        for _ in range(pops):
            rid = uuid.uuid4().hex
            got = pop(keys=script_keys, args=[*before[:5], rid, *before[5:], ENDPOINT, lanes, 0])
            assert got[0] is not None, got
            taken.append((int(got[2]), rid))

    def answers() -> None:
        for lane, rid in taken:
            window = windows[lane - 1]
            window[1] -= 1
            answered(keys=lane_keys[2 * lane - 2: 2 * lane], args=[rid, 200, 10**9, window[1], window[0]])

    pop_us, pop_cmds = phase(r, pops_)
    ans_us, ans_cmds = phase(r, answers)
    return {"pop_us": pop_us, "pop_cmds": pop_cmds, "ans_us": ans_us, "ans_cmds": ans_cmds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compare", default="main", help="the git ref whose scripts are the 'before' row")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--pops", type=int, default=3000)
    ap.add_argument("--lanes", type=int, default=8)
    ap.add_argument("--per", type=int, default=37, help="requests a queue member holds")
    args = ap.parse_args()
    started, load0 = time.time(), os.getloadavg()
    plan = [(f"before ({args.compare})", sources(args.compare)), ("after (this checkout)", sources(None))]
    runs: dict[str, list[dict[str, float]]] = {label: [] for label, _ in plan}
    red = RedisServer()
    try:
        for rnd in range(args.rounds):
            for label, code in (plan if rnd % 2 == 0 else plan[::-1]):
                runs[label].append(row(red, code, args.pops, args.lanes, args.per))
    finally:
        red.stop()

    def med(label: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[label])

    def per_round(label: str, key: str) -> str:
        return " / ".join(f"{r[key]:.1f}" for r in runs[label])

    print(f".venv/bin/python bench/pop_bench.py --compare {args.compare} --rounds {args.rounds} --pops {args.pops} "
          f"--lanes {args.lanes} --per {args.per}")
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}; load {load0[0]:.1f} -> {os.getloadavg()[0]:.1f}\n")
    print("| code | queue_pop µs/call per round | median | commands inside | quota_answered µs/call per round | median | commands inside |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, _ in plan:
        print(f"| {label} | {per_round(label, 'pop_us')} | {med(label, 'pop_us'):.1f} | "
              f"{med(label, 'pop_cmds'):.1f} | {per_round(label, 'ans_us')} | "
              f"{med(label, 'ans_us'):.1f} | {med(label, 'ans_cmds'):.1f} |")
    (b, _), (a, _) = plan
    print(f"\nqueue_pop {med(b, 'pop_us'):.1f} -> {med(a, 'pop_us'):.1f} µs ({med(a, 'pop_us') / med(b, 'pop_us'):.2f}x); "
          f"quota_answered {med(b, 'ans_us'):.1f} -> {med(a, 'ans_us'):.1f} µs ({med(a, 'ans_us') / med(b, 'ans_us'):.2f}x)")


if __name__ == "__main__":
    main()
