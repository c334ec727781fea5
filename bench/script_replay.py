"""Redis time inside each Lua script for a real crawl's own calls, replayed on a quiet Redis (issue 15 §4).

``--capture FILE``: the compare job of ``scale_bench.py`` (a friends crawl of depth 3, one ``scrapy worker``,
8 requests in flight, sandbox latency ``--latency``) from its first page, every command the worker sends
recorded with Redis's MONITOR until ``--pages`` pages are served (JSON lines: the arguments, base64).

``--replay FILE``: those commands sent again, in order, one at a time, to a fresh redis-server that loaded the
scripts of each ``--code`` (this checkout, or a git ref: its ``tweetform/state/redis/lua``); an EVALSHA of a
captured script is sent as the same script of that code. Per script: calls and µs inside it (INFO commandstats
after each call), so two versions of a script are compared on the very same calls and the same data, apart
from the network and the wake-ups of a live crawl. Codes are interleaved over ``--rounds`` rounds.

Usage (repository root)::

    .venv/bin/python bench/script_replay.py --capture /tmp/calls.jsonl --pages 1500
    .venv/bin/python bench/script_replay.py --replay /tmp/calls.jsonl --code main --code . --rounds 2
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quota_bench import PY, ROOT, Proc, demo_credentials, loadavg, md_table, push, tf_env, wait_registered  # noqa: E402
from scale_bench import BIG, FOLLOWING, checkout, script_names  # noqa: E402

from tweetform.testing.servers import RedisServer, SandboxProcess, process_cpu  # noqa: E402

_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("a"): 7, ord("b"): 8, ord('"'): 34, ord("\\"): 92}
_LINE = re.compile(rb"^\+[\d.]+ \[\d+ ([^\]]+)\] (.*)$")
_ARG = re.compile(rb'"((?:[^"\\]|\\.)*)"')


def unrepr(text: bytes) -> bytes:
    """One MONITOR argument back to its bytes (Redis writes them with ``sdscatrepr``)."""
    out, i = bytearray(), 0
    while i < len(text):
        c = text[i]
        if c == 92 and i + 1 < len(text):
            n = text[i + 1]
            if n == ord("x") and i + 3 < len(text):
                out.append(int(text[i + 2:i + 4], 16))
                i += 4
                continue
            out.append(_ESCAPES.get(n, n))
            i += 2
            continue
        out.append(c)
        i += 1
    return bytes(out)


def monitor(port: int, sink: list[list[bytes]], stop: threading.Event, skip: set[str]) -> None:
    """Every command a client (not Lua, not the bench's own ``skip`` connections) sends, in order."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"MONITOR\r\n")
    s.settimeout(0.2)
    buf = b""
    while not stop.is_set():
        try:
            data = s.recv(1 << 20)
        except socket.timeout:
            continue
        if not data:
            break
        buf += data
        *lines, buf = buf.split(b"\r\n")
        for line in lines:
            m = _LINE.match(line)
            if not m or m[1] == b"lua" or m[1].decode() in skip:
                continue
            sink.append([unrepr(a) for a in _ARG.findall(m[2])])
    s.close()


def capture(args: argparse.Namespace) -> None:
    box = SandboxProcess("--users", "100000", "--seed", "1", "--window", "900", "--limit", f"{FOLLOWING}={BIG}",
                         "--latency", str(args.latency), python=PY, cwd=ROOT)
    red = RedisServer()
    work = Path(tempfile.mkdtemp(prefix="script-replay-"))
    creds = demo_credentials(*[f"demo-user-{i}" for i in range(1, 9)])
    sink: list[list[bytes]] = []
    stop = threading.Event()
    try:
        seed = box.get("/_sandbox/examples")["many_friends"][0]
        env = tf_env(box, work, creds, red.url)
        own = {c['addr'] for c in red.client.client_list()}
        watcher = threading.Thread(target=monitor, args=(red.port, sink, stop, own), daemon=True)
        watcher.start()
        time.sleep(0.3)
        proc = Proc(["worker", "--spiders", "friends", "-s", f"CONCURRENT_REQUESTS={args.concurrency}"], env, work / "worker.log", None)
        try:
            wait_registered(red.client, [proc.pid])
            push(env, "friends", "--user-id", str(seed), "--depth", "3", "--job", "replay")
            deadline = time.time() + 600
            while box.served(FOLLOWING) < args.pages:
                if time.time() > deadline or proc.proc.poll() is not None:
                    raise RuntimeError(f"{args.pages} pages not served; see {work}")
                time.sleep(0.1)
        finally:
            proc.proc.terminate()
            proc.proc.wait(30)
        time.sleep(0.5)
        stop.set()
        watcher.join(5)
    finally:
        red.stop()
        box.stop()
    with open(args.capture, "w") as f:
        for argv in sink:
            f.write(json.dumps([base64.b64encode(a).decode() for a in argv]) + "\n")
    evals = sum(1 for a in sink if a and a[0].upper() == b"EVALSHA")
    print(f"{len(sink)} commands ({evals} EVALSHA) of {args.pages} pages written to {args.capture}")


def lua_sources(code: Path | None) -> dict[str, str]:
    """name -> source (includes resolved) of a checkout's scripts."""
    out = subprocess.run([PY, "-c", "import json; from tweetform.state.redis import scripts; "
                          "print(json.dumps({n: scripts.source(n) for n in scripts.names()}))"],
                         cwd=str(code or ROOT), env={"PYTHONPATH": str(code or ROOT), "PATH": "/usr/bin:/bin"},
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def usec_by_command(r: Any) -> dict[str, int]:
    return {k.removeprefix("cmdstat_"): v["usec"] for k, v in r.info("commandstats").items()}


def replay_once(calls: list[list[bytes]], names: dict[str, str], sources: dict[str, str], per_call: bool = True) -> dict[str, Any]:
    """One replay on a fresh redis-server. ``per_call``: INFO after each script call (µs per script; the INFO
    itself evicts Redis's caches between calls, so scripts cost more than without)."""
    red = RedisServer()
    try:
        r = red.client
        sha = {name: r.script_load(text) for name, text in sources.items()}
        per: dict[str, list[float]] = {}
        cpu0 = process_cpu(red.proc.pid)
        errors = 0
        for argv in calls:
            cmd = argv[0].upper()
            if cmd in (b"MONITOR", b"CLIENT", b"INFO", b"SCRIPT", b"HELLO", b"SELECT"):
                continue
            name = None
            if cmd == b"EVALSHA":
                name = names.get(argv[1].decode(), "?")
                if name not in sha:
                    continue
                argv = [argv[0], sha[name].encode(), *argv[2:]]
            before = r.info("commandstats").get("cmdstat_evalsha", {}).get("usec", 0) if name and per_call else 0
            try:
                r.execute_command(*argv)
            except Exception:  # noqa: BLE001 - a call refused here was refused live too (e.g. a lease lost)
                errors += 1
            if name and per_call:
                after = r.info("commandstats").get("cmdstat_evalsha", {}).get("usec", 0)
                row = per.setdefault(name, [0, 0])
                row[0] += 1
                row[1] += after - before
        cpu1 = process_cpu(red.proc.pid)
        stats = usec_by_command(r)
        if not per_call:
            per["all, no INFO between calls"] = [sum(1 for a in calls if a[0].upper() == b"EVALSHA"), stats.get("evalsha", 0)]
    finally:
        red.stop()
    return {"per": per, "errors": errors, "inner": {k: v for k, v in stats.items() if k not in ("evalsha", "info", "script")},
            "cpu": cpu1 - cpu0}


def replay(args: argparse.Namespace) -> None:
    started, load0 = time.time(), loadavg()
    calls = [[base64.b64decode(a) for a in json.loads(line)] for line in open(args.replay)]
    work = Path(tempfile.mkdtemp(prefix="script-replay-"))
    codes: list[tuple[str, dict[str, str]]] = []
    for ref in args.code or ["."]:
        path = None if ref == "." else checkout(ref, work)
        codes.append((ref, lua_sources(path)))
    names: dict[str, str] = {}
    for path in [None, *[work / p.name for p in work.iterdir()]]:
        names.update(script_names(path))
    pages = sum(1 for a in calls if a[0].upper() == b"EVALSHA" and names.get(a[1].decode()) == "quota_answered")
    results: dict[str, list[dict[str, Any]]] = {ref: [] for ref, _ in codes}
    for rnd in range(args.rounds):
        order = codes if rnd % 2 == 0 else codes[::-1]
        for ref, sources in order:
            run = replay_once(calls, names, sources)
            run["per"].update(replay_once(calls, names, sources, per_call=False)["per"])
            results[ref].append(run)
            per = {k: v for k, v in run["per"].items() if not k.startswith("all")}
            total = sum(v[1] for v in per.values())
            print(f"round {rnd + 1} {ref}: {total / max(pages, 1):.1f} µs/page inside scripts, errors {results[ref][-1]['errors']}", flush=True)
    scripts = sorted({s for runs in results.values() for run in runs for s in run["per"] if not s.startswith("all")},
                     key=lambda s: -statistics.median(run["per"].get(s, [0, 0])[1] for run in results[codes[0][0]]))
    head = ["script", *[f"{ref}: calls/page" for ref, _ in codes], *[f"{ref}: µs/page (rounds)" for ref, _ in codes],
            *[f"{ref}: µs/call" for ref, _ in codes]]
    rows = []
    for s in [*scripts, "all", "all, no INFO between calls"]:
        calls_col, us_col, per_call = [], [], []
        for ref, _ in codes:
            runs = results[ref]
            if s == "all":
                n = [sum(v[0] for k, v in run["per"].items() if not k.startswith("all")) for run in runs]
                us = [sum(v[1] for k, v in run["per"].items() if not k.startswith("all")) for run in runs]
            else:
                n = [run["per"].get(s, [0, 0])[0] for run in runs]
                us = [run["per"].get(s, [0, 0])[1] for run in runs]
            calls_col.append(f"{statistics.median(n) / max(pages, 1):.2f}")
            us_col.append(" / ".join(f"{u / max(pages, 1):.1f}" for u in us))
            per_call.append(f"{statistics.median(us) / max(statistics.median(n), 1):.1f}")
        rows.append([s, *calls_col, *us_col, *per_call])
    inner_rows = []
    for ref, _ in codes:
        inner = results[ref][0]["inner"]
        top = sorted(inner.items(), key=lambda kv: -kv[1])[:8]
        inner_rows.append([ref, ", ".join(f"{k} {v / max(pages, 1):.1f}" for k, v in top)])
    text = "\n".join([
        "## Lua scripts replayed: a live crawl's own calls on a quiet Redis (issue 15 §4)", "",
        "```", f".venv/bin/python bench/script_replay.py --replay {args.replay} " + " ".join(f"--code {r}" for r, _ in codes)
        + f" --rounds {args.rounds}", "```", "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}: {len(calls)} commands, {pages} pages "
        "(quota_answered calls); each code on a fresh redis-server, codes interleaved.", "",
        md_table(head, rows), "",
        "µs per page inside the commands the scripts ran (commandstats, first round):", "",
        md_table(["code", "commands"], inner_rows), "",
        f"Machine: load {load0} → {loadavg()}; took {time.time() - started:.0f} s.",
    ])
    print("\n" + text)
    if args.out:
        args.out.write_text(text + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--capture", type=Path)
    ap.add_argument("--replay", type=Path)
    ap.add_argument("--pages", type=int, default=1500)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--code", action="append", help="'.' (this checkout) or a git ref; repeat to compare")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.capture:
        capture(args)
    if args.replay:
        replay(args)


if __name__ == "__main__":
    main()
