"""P1 quota benchmark (issue 4): how much of every credential's window quota tweetform uses.

8 user-context credentials (demo-user-1..8), a sandbox with a window of a few seconds and a
low per-window limit on ``/2/users/:id/following``, a friends crawl (depth 2 of a user with
~1,800 friends) far bigger than the run, so quota is always the bottleneck. Rows, measured
one after the other in one invocation against one sandbox (counters and rate-limit state
reset between rows, Redis flushed):

* ``tweetform 3 workers``   3 ``scrapy worker --spiders friends`` processes sharing the 8
                            credentials' quota through one Redis (``scrapy push`` job);
* ``tweetform 1 worker``    the same with 1 process;
* ``tweetform crawl``       ``scrapy crawl friends`` (one process, no Redis, in-process quota book);
* ``tweetform 1 cred``      1 worker with demo-user-1 only (same policy, one credential);
* ``sleep-to-reset 1 cred`` a sequential requests + requests_oauthlib client with demo-user-1 that,
                            on a 429, sleeps until ``x-rate-limit-reset`` (+ the same 0.1 s margin
                            tweetform gets; twarc2 sleeps reset − now + 10 s, tweepy reset −
                            int(now) + 1 s), then retries — twarc's / tweepy's policy.

Each row runs until every one of its credentials has started ``windows + 2`` windows; the
first window (it opens with one probe per credential) and the last (cut short) are
excluded, the ``windows`` in between are measured, from ``/_sandbox/counters``:

* fill: per window round r, Σ over the row's credentials of served in their r-th window ÷
  (credentials × limit) — median and minimum over rounds (target ≥ 97 %);
* 429s per credential × endpoint (target: 0, ≤ 1);
* pages/s: Σ over credentials of pages served in the measured windows ÷ the time from the
  start of its first measured window to the start of the window after the last;
  "of n·limit/W" divides that by the nominal n × limit ÷ W (the sandbox's windows end on a
  whole second, ``reset = ceil(start + W)``, so a W = 3 s window lasts 3-4 s: this ratio
  cannot reach 100 % even with every window full);
* gap: mean seconds between a window's reset and the next window's first request.

Usage (repository root)::

    .venv/bin/python bench/quota_bench.py            # 8 measured windows per row, ~5 min
    .venv/bin/python bench/quota_bench.py --quick    # 5 measured windows per row, ~3 min
    options: --window 3 --limit 10 --windows N --out bench/results-distributed.md (--quick writes only with --out)

This module also holds the process helpers ``bench/scale_bench.py`` uses (sandbox, Redis,
workers, /proc sampling).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tweetform.testing.servers import RedisServer, SandboxProcess  # noqa: E402

PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
FOLLOWING = "/2/users/:id/following"
RESULTS = ROOT / "bench" / "results-distributed.md"


# ------------------------------------------------------------------------------------------
# process helpers (shared with scale_bench.py; the sandbox and Redis are tweetform.testing.servers')


def proc_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def demo_credentials(*aliases: str) -> list[dict[str, str]]:
    from tweetform.sandbox.credentials import demo_credentials_as_settings

    creds = demo_credentials_as_settings()
    return [c for c in creds if c["alias"] in aliases] if aliases else creds


def tf_env(box: SandboxProcess, output: Path, creds: list[dict[str, str]], redis_url: str = "", margin: float = 0.1) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWEETFORM_", "REDIS_", "ROTATING_PROXY_"))}
    env.update({
        "TWEETFORM_API_BASE": box.base,
        "TWEETFORM_CREDENTIALS": json.dumps(creds),
        "TWEETFORM_OUTPUT_DIR": str(output),
        "TWEETFORM_QUOTA_RESET_MARGIN": str(margin),
        "TWEETFORM_PROGRESS": "log",
        "TWEETFORM_BUDGET_USD": "unlimited",  # measures quota use, not spending
    })
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


class Proc:
    """A tweetform command running with its log in a file."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path, code: Path | None = None) -> None:
        """``code``: run another checkout of tweetform (a directory with its ``tweetform`` package), not this one."""
        self.argv = argv
        self.log = log
        self.fh = open(log, "w")
        if code is not None:
            env = {**env, "PYTHONPATH": str(code)}
        self.proc = subprocess.Popen([PY, "-m", "scrapy", *argv], cwd=code or ROOT, env=env, stdout=self.fh, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid

    def stop(self, timeout: float = 40) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.fh.close()
        return self.proc.returncode

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def problems(self) -> list[str]:
        """ERROR / CRITICAL log lines and tracebacks."""
        return [line for line in self.text().splitlines() if "] ERROR:" in line or "] CRITICAL:" in line or line.startswith("Traceback")]


def push(env: dict[str, str], *args: str) -> None:
    done = subprocess.run([PY, "-m", "scrapy", "push", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"scrapy push failed: {done.stderr[-2000:]}")


def wait_registered(r: Any, pids: list[int], spider: str = "friends", timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        infos = [json.loads(v) for v in r.hvals("tweetform:workers")]
        if set(pids) <= {i["pid"] for i in infos if i["spider"] == spider}:
            return
        time.sleep(0.1)
    raise RuntimeError("workers did not register in Redis")


def md_table(header: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def write_section(path: Path, name: str, text: str) -> None:
    """Replace (or append) this benchmark's section of the shared results file."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    old = path.read_text() if path.exists() else "# Distributed mode: quota, scale-out, memory\n\n"
    block = f"{start}\n{text.rstrip()}\n{end}"
    if start in old and end in old:
        new = old[: old.index(start)] + block + old[old.index(end) + len(end):]
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    path.write_text(new if new.endswith("\n") else new + "\n")


# ------------------------------------------------------------------------------------------
# the sleep-to-reset baseline client (run as a subprocess: --baseline BASE ALIAS SEED DEPTH MARGIN)


def baseline_client(base: str, alias: str, seed: int, depth: int, margin: float) -> None:
    import requests
    from requests_oauthlib import OAuth1

    cred = demo_credentials(alias)[0]
    session = requests.Session()
    session.auth = OAuth1(cred["app_key"], cred["app_secret"], cred["oauth_token"], cred["oauth_token_secret"])
    queue, seen = deque([(seed, 1)]), {seed}
    pages = sleeps = 0
    while queue:
        uid, level = queue.popleft()
        token = None
        while True:
            params: dict[str, Any] = {"max_results": 1000}
            if token:
                params["pagination_token"] = token
            resp = session.get(f"{base}/2/users/{uid}/following", params=params, timeout=60)
            if resp.status_code == 429:
                reset = int(resp.headers["x-rate-limit-reset"])
                time.sleep(max(0.0, reset - time.time()) + margin)
                sleeps += 1
                continue
            body = resp.json()
            pages += 1
            if level < depth:
                for user in body.get("data") or []:
                    u = int(user["id"])
                    if u not in seen:
                        seen.add(u)
                        queue.append((u, level + 1))
            token = (body.get("meta") or {}).get("next_token")
            if not token:
                break
    print(f"baseline done: {pages} pages, {sleeps} sleeps", flush=True)


# ------------------------------------------------------------------------------------------
# P1


def measure_windows(rows: list[dict[str, Any]], aliases: list[str], limit: int, window: float, measured: int) -> dict[str, Any]:
    by_alias = {r["alias"]: r for r in rows}
    wins = {a: by_alias[a]["windows"] for a in aliases}
    rounds = []
    for r in range(1, measured + 1):
        rounds.append(sum(wins[a][r]["served"] for a in aliases) / (len(aliases) * limit))
    served = sum(wins[a][r]["served"] for a in aliases for r in range(1, measured + 1))
    rate = sum(sum(wins[a][r]["served"] for r in range(1, measured + 1)) / (wins[a][measured + 1]["start"] - wins[a][1]["start"])
               for a in aliases)
    gaps = [wins[a][r + 1]["start"] - wins[a][r]["reset"] for a in aliases for r in range(1, measured + 1)]
    lengths = [wins[a][r]["reset"] - wins[a][r]["start"] for a in aliases for r in range(1, measured + 1)]
    per_key_429 = {a: by_alias[a]["rate_limited"] for a in aliases}
    over = [a for a in aliases if by_alias[a]["max_served_in_window"] > limit]
    return {
        "rounds": rounds, "fill_median": statistics.median(rounds), "fill_min": min(rounds), "served": served,
        "rate": rate, "nominal": rate / (len(aliases) * limit / window), "gap": statistics.mean(gaps),
        "length": statistics.mean(lengths), "max_429": max(per_key_429.values()), "sum_429": sum(per_key_429.values()),
        "over_limit": over, "windows_seen": min(len(w) for w in wins.values()),
    }


def run_row(name: str, box: SandboxProcess, red: RedisServer, aliases: list[str], *, workers: int, mode: str, seed: int, depth: int,
            limit: int, window: float, measured: int, workdir: Path, margin: float) -> dict[str, Any]:
    box.reset()
    red.flush()
    out = workdir / name.replace(" ", "_")
    out.mkdir(parents=True, exist_ok=True)
    creds = demo_credentials(*aliases)
    procs: list[Any] = []
    command = ""
    t_start = time.time()
    if mode == "workers":
        env = tf_env(box, out, creds, red.url, margin)
        procs = [Proc(["worker", "--spiders", "friends"], env, out / f"worker{i}.log") for i in range(workers)]
        wait_registered(red.client, [p.pid for p in procs])
        push(env, "friends", "--user-id", str(seed), "--depth", str(depth), "--job", f"quota-{workers}w-{len(aliases)}c")
        command = (f"{workers} × `scrapy worker --spiders friends` + `scrapy push friends --user-id {seed} --depth {depth}` "
                   f"(REDIS_URL, TWEETFORM_QUOTA_RESET_MARGIN={margin})")
    elif mode == "crawl":
        env = tf_env(box, out, creds, "", margin)
        procs = [Proc(["crawl", "friends", "-a", f"user_id={seed}", "-a", f"depth={depth}"], env, out / "crawl.log")]
        command = f"`scrapy crawl friends -a user_id={seed} -a depth={depth}` (no Redis, TWEETFORM_QUOTA_RESET_MARGIN={margin})"
    else:
        log = open(out / "baseline.log", "w")
        p = subprocess.Popen([PY, __file__, "--baseline", box.base, aliases[0], str(seed), str(depth), str(margin)],
                             cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        procs = [p]
        command = f"`python bench/quota_bench.py --baseline <base> {aliases[0]} {seed} {depth} {margin}` (requests + requests_oauthlib)"
    deadline = time.time() + (measured + 6) * (window + 1.5) + 90
    rows: list[dict[str, Any]] = []
    try:
        while time.time() < deadline:
            rows = box.rows(FOLLOWING)
            seen = {r["alias"]: len(r["windows"]) for r in rows}
            if all(seen.get(a, 0) >= measured + 2 for a in aliases):
                break
            if any((p.proc if isinstance(p, Proc) else p).poll() is not None for p in procs):
                raise RuntimeError(f"{name}: a process ended early; see {out}")
            time.sleep(0.3)
        else:
            raise RuntimeError(f"{name}: credentials did not reach {measured + 2} windows in time: {seen}")
    finally:
        for p in procs:
            if isinstance(p, Proc):
                p.stop()
            else:
                p.terminate()
                p.wait(30)
    problems = [line for p in procs if isinstance(p, Proc) for line in p.problems()]
    for line in problems[:5]:
        print(f"   log: {line}", flush=True)
    wall = time.time() - t_start
    rows = box.rows(FOLLOWING)
    result = measure_windows(rows, aliases, limit, window, measured)
    result.update(name=name, creds=len(aliases), processes=workers, command=command, wall=wall, problems=len(problems))
    other_429 = sum(r["rate_limited"] for r in box.counters()["limits"] if r["endpoint"] != FOLLOWING)
    result["other_429"] = other_429
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--window", type=float, default=3.0)
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--windows", type=int, help="measured windows per row (default 8, --quick 5)")
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--margin", type=float, default=0.1, help="TWEETFORM_QUOTA_RESET_MARGIN and the baseline's margin")
    ap.add_argument("--out", type=Path, help=f"results file (default {RESULTS.relative_to(ROOT)} unless --quick)")
    ap.add_argument("--baseline", nargs=5, metavar=("BASE", "ALIAS", "SEED", "DEPTH", "MARGIN"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.baseline:
        base, alias, seed, depth, margin = args.baseline
        baseline_client(base, alias, int(seed), int(depth), float(margin))
        return
    measured = args.windows or (5 if args.quick else 8)
    out_path = args.out or (None if args.quick else RESULTS)
    users8 = [f"demo-user-{i}" for i in range(1, 9)]
    started, load0 = time.time(), loadavg()
    box = SandboxProcess("--users", str(args.users), "--seed", "1", "--window", str(args.window),
                         "--limit", f"{FOLLOWING}={args.limit}", python=PY, cwd=ROOT)
    red = RedisServer()
    workdir = Path(tempfile.mkdtemp(prefix="quota-bench-"))
    results = []
    try:
        seed = box.get("/_sandbox/examples")["many_friends"][0]
        depth = 2
        plan = [
            ("tweetform 3 workers", users8, 3, "workers"),
            ("tweetform 1 worker", users8, 1, "workers"),
            ("tweetform crawl (no Redis)", users8, 1, "crawl"),
            ("tweetform 1 cred, 1 worker", users8[:1], 1, "workers"),
            ("sleep-to-reset 1 cred", users8[:1], 1, "baseline"),
        ]
        for name, aliases, n, mode in plan:
            print(f"== {name} ...", flush=True)
            res = run_row(name, box, red, aliases, workers=n, mode=mode, seed=seed, depth=depth, limit=args.limit,
                          window=args.window, measured=measured, workdir=workdir, margin=args.margin)
            results.append(res)
            print(f"   fill median {res['fill_median']:.1%} min {res['fill_min']:.1%}, {res['rate']:.2f} pages/s, "
                  f"429 max/key {res['max_429']}, rounds {[round(x, 3) for x in res['rounds']]}", flush=True)
    finally:
        red.stop()
        box.stop()
    shutil.rmtree(workdir, ignore_errors=True)
    tf8 = results[0]["rate"]
    rows = []
    for r in results:
        rows.append([r["name"], r["processes"], r["creds"], f"{r['fill_median']:.1%}", f"{r['fill_min']:.1%}",
                     " ".join(f"{x:.0%}" for x in r["rounds"]), r["served"], f"{r['rate']:.2f}", f"{r['nominal']:.0%}",
                     f"{r['rate'] / tf8:.2f}", f"{r['gap']:.2f}", f"{r['sum_429']} / {r['max_429']}",
                     "none" if not r["over_limit"] else ", ".join(r["over_limit"]), r["problems"]])
    header = ["row", "processes", "credentials", "fill median", "fill min", "fill per window", "pages in measured windows",
              "pages/s", "of n·limit/W", "× 3 workers", "gap after reset s", "429 total / max per cred×endpoint", "window over limit",
              "ERROR lines in logs"]
    table = md_table(header, rows)
    targets = []
    r3 = results[0]
    ok_fill = r3["fill_min"] >= 0.97
    ok_429 = r3["max_429"] <= 1
    targets.append(f"- 3 workers × 8 credentials: fill ≥ 97 % in every measured window: **{'met' if ok_fill else 'missed'}** "
                   f"(min {r3['fill_min']:.1%}, median {r3['fill_median']:.1%}); ≤ 1 429 per credential × endpoint: "
                   f"**{'met' if ok_429 else 'missed'}** (max {r3['max_429']}).")
    r1 = results[1]
    targets.append(f"- 1 worker × 8 credentials: fill min {r1['fill_min']:.1%}, 429 max {r1['max_429']}: "
                   f"**{'met' if r1['fill_min'] >= 0.97 and r1['max_429'] <= 1 else 'missed'}**.")
    b = results[-1]
    targets.append(f"- sleep-to-reset, 1 credential: fill median {b['fill_median']:.1%}, {b['sum_429']} 429s "
                   f"({b['sum_429'] / measured:.1f} per window); {b['rate']:.2f} pages/s = "
                   f"{b['rate'] / tf8:.3f} × tweetform with 8 credentials in 3 workers ({tf8:.2f} pages/s).")
    text = "\n".join([
        "## P1 quota: served per window as a fraction of n × limit (issue 4)",
        "",
        "```",
        f"{PY.replace(str(ROOT) + '/', '')} bench/quota_bench.py{' --quick' if args.quick else ''}"
        + (f" --windows {args.windows}" if args.windows else ""),
        "```",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}; sandbox `{box.command}`; "
        f"job: friends depth {depth} of user {seed} (~1,800 users, far more than the run fetches); credentials demo-user-1..8 "
        f"(user context; no app lanes); limit {args.limit} per {args.window:g} s window per credential; "
        f"{measured} measured windows per row (first and last excluded); rows run one after the other, "
        f"sandbox counters and quota state reset and Redis flushed between rows.",
        "",
        table,
        "",
        "Row commands: " + "; ".join(f"*{r['name']}*: {r['command']}" for r in results) + ".",
        "",
        *targets,
        "",
        "fill = Σ served in the r-th window of each credential ÷ (credentials × limit). pages/s = Σ per credential of "
        "pages in its measured windows ÷ (start of the window after the last measured − start of the first measured). "
        "`of n·limit/W` is below the fill because the sandbox ends windows on whole seconds (reset = ceil(start + W), "
        f"mean measured window {results[0]['length']:.2f} s for W = {args.window:g} s) and the next window opens only at "
        "the first request after the reset (gap column; margin + scheduling).",
        "",
        f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, load {load0} → {loadavg()}; "
        f"total {time.time() - started:.0f} s.",
    ])
    print()
    print(text)
    if out_path:
        write_section(out_path, "quota_bench", text)
        print(f"\nwritten to {out_path}")


if __name__ == "__main__":
    main()
