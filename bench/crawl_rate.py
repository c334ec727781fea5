"""Crawl rate: pages/s and CPU ms per page of tweetform vs bare Scrapy, twarc2 and tweepy.

All clients fetch the same v2 ``/2/users/:id/followers?max_results=1000&user.fields=...``
pages from one local sandbox (``python -m tweetform.sandbox``), at 0 ms and at
100 ms of added latency, in one invocation, interleaved over a few rounds
(median reported):

* ``tweetform``      the real ``scrapy crawl followers -a user_id=a,b,... -a data_type=users -a api=2``
                     (demo-user-1 + demo-app-1: OAuth 1.0a signing and bearer, bucket files, provenance),
                     with tweetform's own settings (no settings_local.py);
* ``scrapy-default`` a minimal spider with Scrapy's default settings (only ROBOTSTXT_OBEY,
                     telnet console, remote control and log level changed) that follows
                     ``next_token`` and yields each page dict to a trivial JSONL pipeline;
* ``scrapy-c64``     the same with CONCURRENT_REQUESTS(_PER_DOMAIN)=64 (100 ms only);
* ``twarc2``         ``twarc.client2.Twarc2(bearer_token=...).followers()``, each page written as
                     ``twarc2 followers`` does (``click.echo(json.dumps(page))``, ``__twarc`` metadata on);
* ``tweepy``         ``tweepy.Paginator(client.get_users_followers, id, max_results=1000, ...)``,
                     default ``Response`` objects, each page written as one JSON line.

twarc2 and tweepy reach the sandbox through a requests adapter mounted on their own
session that rewrites ``https://api.twitter.com`` to the sandbox URL. They fetch one
user's pages one at a time, so at 100 ms they are measured on a subset of the users
(their pages/s does not depend on how many pages they fetch).

Each client runs in its own subprocess. Two measurements per run:

* *crawl*: wall and CPU time (``time.process_time``) from just before the first request to
  after the last page is written -- for Scrapy processes a tiny extension
  (:class:`Meter`, enabled with ``-s EXTENSIONS=...``) records them at spider_opened and
  spider_closed; the sequential clients time their own loop. pages/s and the ratio to
  twarc2 use these.
* *process*: wall and CPU (``getrusage(RUSAGE_CHILDREN)``) of the whole subprocess,
  interpreter start and imports included.

The sandbox's own CPU per page is reported too (it shares this machine's cores).
Every run's output is checked: same number of pages, of accounts and the same id
checksum as the reference (the warm-up run, itself checked against
``/_sandbox/truth/followers/<id>``).

Usage (from the repository root; needs ``pip install -e .[bench]`` and
``pip install --no-deps tweepy==4.17.0``, see pyproject.toml)::

    .venv/bin/python bench/crawl_rate.py            # full run (~4-5 min), writes bench/results-crawl.md
    .venv/bin/python bench/crawl_rate.py --quick    # smaller (~1.5 min), writes nothing unless --out
    .venv/bin/python bench/crawl_rate.py --profile /tmp/tf.prof   # also profile tweetform at 0 ms
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tweetform.testing.servers import SandboxProcess  # noqa: E402

API = "https://api.twitter.com"
METER_ENV = "BENCH_METER_FILE"
# 50,000 users, not 100,000: the sandbox renders a page by computing the counts of its 1,000
# accounts, which costs ~0.8 ms each until its caches (65,536 users) hold the whole world, so a
# smaller world keeps the warm-up under a minute; pages are the same size either way.
WORLD_USERS, WORLD_SEED = 50_000, 1
SANDBOX_ARGS = ["--users", str(WORLD_USERS), "--seed", str(WORLD_SEED), "--window", "900",
                "--limit", "/2/users/:id/followers=1000000000"]
SEQUENTIAL = ("twarc2", "tweepy")
CLIENTS = {0.0: ["twarc2", "tweepy", "scrapy-default", "tweetform"],
           0.1: ["twarc2", "tweepy", "scrapy-default", "scrapy-c64", "tweetform"]}


# --------------------------------------------------------------------------------------
# Pieces that run inside the measured subprocesses (kept import-light)
# --------------------------------------------------------------------------------------


class Meter:
    """Scrapy extension: crawl wall and CPU from spider_opened to spider_closed, to $BENCH_METER_FILE."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.t0 = self.c0 = 0.0

    @classmethod
    def from_crawler(cls, crawler: Any) -> "Meter":
        from scrapy import signals

        ext = cls(os.environ[METER_ENV])
        crawler.signals.connect(ext.opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.closed, signal=signals.spider_closed)
        return ext

    def opened(self) -> None:
        self.t0, self.c0 = time.perf_counter(), time.process_time()

    def closed(self, reason: str) -> None:
        wall, cpu = time.perf_counter() - self.t0, time.process_time() - self.c0
        Path(self.path).write_text(json.dumps({"wall": wall, "cpu": cpu, "reason": reason}))


class JsonLinesPipeline:
    """The trivial pipeline of the bare spider: one JSON line per page, one file."""

    def open_spider(self, spider: Any = None) -> None:
        self.fh = open(os.path.join(os.environ["BENCH_OUT_DIR"], "pages.jsonl"), "w")

    def process_item(self, item: Any, spider: Any = None) -> Any:
        self.fh.write(json.dumps(item) + "\n")
        return item

    def close_spider(self, spider: Any = None) -> None:
        self.fh.close()


def rewrite_adapter(base: str) -> Any:
    """A requests adapter that sends https://api.twitter.com/... to the sandbox instead."""
    from requests.adapters import HTTPAdapter

    class RewriteAdapter(HTTPAdapter):
        def send(self, request: Any, **kwargs: Any) -> Any:
            if request.url.startswith(API):
                request.url = base + request.url[len(API):]
            return super().send(request, **kwargs)

    return RewriteAdapter()


def worker_twarc2(base: str, token: str, users: list[int], out: Path, fields: str) -> int:
    import click
    from twarc.client2 import Twarc2

    client = Twarc2(bearer_token=token)
    connect = client.connect

    def connect_to_sandbox() -> None:  # twarc reconnects after errors: keep the adapter
        connect()
        client.client.mount(API, rewrite_adapter(base))

    client.connect = connect_to_sandbox  # type: ignore[method-assign]
    client.connect()
    pages = 0
    for uid in users:
        with open(out / f"{uid}.jsonl", "w") as fh:
            for page in client.followers(uid, user_id=uid, user_fields=fields):
                click.echo(json.dumps(page), file=fh)  # twarc2's own _write
                pages += 1
    return pages


def worker_tweepy(base: str, token: str, users: list[int], out: Path, fields: str) -> int:
    import tweepy

    client = tweepy.Client(bearer_token=token)
    client.session.mount(API, rewrite_adapter(base))
    pages = 0
    for uid in users:
        with open(out / f"{uid}.jsonl", "w") as fh:
            for resp in tweepy.Paginator(client.get_users_followers, uid, max_results=1000, user_fields=fields):
                page = {"data": [u.data for u in resp.data or []], "meta": resp.meta}
                if resp.errors:
                    page["errors"] = resp.errors
                fh.write(json.dumps(page) + "\n")
                pages += 1
    return pages


def worker_scrapy(base: str, token: str, users: list[int], out: Path, fields: str, concurrency: int) -> None:
    from urllib.parse import urlencode

    import scrapy
    from scrapy.crawler import CrawlerProcess

    class FollowersPages(scrapy.Spider):
        name = "bare_followers"

        def request(self, uid: int, token_: str | None = None) -> scrapy.Request:
            params = {"max_results": 1000, "user.fields": fields}
            if token_:
                params["pagination_token"] = token_
            return scrapy.Request(f"{base}/2/users/{uid}/followers?{urlencode(params)}",
                                  headers={"Authorization": f"Bearer {token}"}, cb_kwargs={"uid": uid})

        async def start(self):  # type: ignore[override]
            for uid in users:
                yield self.request(uid)

        def parse(self, response: Any, uid: int) -> Any:
            page = response.json()
            yield page
            nxt = (page.get("meta") or {}).get("next_token")
            if nxt:
                yield self.request(uid, nxt)

    settings: dict[str, Any] = {
        "ROBOTSTXT_OBEY": False,
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,
        "LOG_LEVEL": "WARNING",
        "ITEM_PIPELINES": {"bench.crawl_rate.JsonLinesPipeline": 300},
        "EXTENSIONS": {"bench.crawl_rate.Meter": 0},
    }
    if concurrency:
        settings.update(CONCURRENT_REQUESTS=concurrency, CONCURRENT_REQUESTS_PER_DOMAIN=concurrency)
    os.environ["BENCH_OUT_DIR"] = str(out)
    process = CrawlerProcess(settings)
    process.crawl(FollowersPages)
    process.start()


def worker_main(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(ROOT))
    users = [int(u) for u in args.users.split(",")]
    out = Path(args.out)
    if args.worker.startswith("scrapy"):
        worker_scrapy(args.base, args.token, users, out, args.fields, args.concurrency)
        return 0
    if args.worker == "twarc2":  # imports before the clock starts, as Scrapy's are before spider_opened
        import click  # noqa: F401
        import twarc.client2  # noqa: F401
    else:
        import tweepy  # noqa: F401
    fn = worker_twarc2 if args.worker == "twarc2" else worker_tweepy
    t0, c0 = time.perf_counter(), time.process_time()
    fn(args.base, args.token, users, out, args.fields)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    Path(os.environ[METER_ENV]).write_text(json.dumps({"wall": wall, "cpu": cpu}))
    return 0


# --------------------------------------------------------------------------------------
# The harness
# --------------------------------------------------------------------------------------


def start_sandbox(tmp: Path) -> SandboxProcess:
    config = tmp / "sandbox.json"
    config.write_text(json.dumps({"cache_mb": 2048}))  # every page of both query variants stays cached
    return SandboxProcess("--config", str(config), *SANDBOX_ARGS, cwd=ROOT)


def pick_users(quick: bool) -> list[int]:
    """Visible users of the sandbox world's follower tiers 3-5 (about 9,200, 5,300 and 3,200
    followers: chains of 10, 6 and 4 pages), longest chains first; quick: tier 4 and 10 of tier 5.
    Ids come from the world's index order (tier t = indices 2**t - 1 .. 2**(t+1) - 2)."""
    from tweetform.sandbox.world import World

    world = World(seed=WORLD_SEED, users=WORLD_USERS)

    def tier(t: int) -> list[int]:
        ids = [world.id_of(i) for i in range(2**t - 1, 2 ** (t + 1) - 1)]
        return [u for u in ids if world.state(u) == "normal"]

    return tier(4) + tier(5)[:10] if quick else tier(3) + tier(4) + tier(5)


def sequential_subset(users: list[int], quick: bool) -> list[int]:
    """What twarc2 and tweepy fetch at 100 ms: the first user(s) and the last few (~36 pages; quick ~15)."""
    return users[:1] + users[-2:] if quick else users[:2] + users[-4:]


def read_pages(out: Path) -> dict[str, Any]:
    """Pages, accounts and a checksum of the account ids written under ``out``."""
    pages = accounts = checksum = 0
    errors = 0
    for path in sorted(out.rglob("*.jsonl")):
        if path.parent.name == "errors":
            errors += sum(1 for _ in path.open("rb"))
            continue
        with path.open("rb") as fh:
            for line in fh:
                page = json.loads(line)
                pages += 1
                for u in page.get("data") or []:
                    accounts += 1
                    checksum = (checksum + int(u["id"])) % (1 << 64)
    return {"pages": pages, "accounts": accounts, "checksum": checksum, "error_records": errors}


def tweetform_command(users: list[int]) -> list[str]:
    return [sys.executable, "-m", "scrapy", "crawl", "followers", "-a", "user_id=" + ",".join(map(str, users)),
            "-a", "data_type=users", "-a", "api=2"]


def tweetform_env(box: SandboxProcess, out: Path, tmp: Path) -> dict[str, str]:
    from tweetform.sandbox.credentials import demo_credentials_as_settings

    creds = [c for c in demo_credentials_as_settings() if c["alias"] in ("demo-user-1", "demo-app-1")]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWEETFORM_", "REDIS_", "ROTATING_PROXY_"))}
    empty = tmp / "settings_local_empty.py"  # tweetform's defaults, whatever settings_local.py lies around
    empty.touch()
    env.update(TWEETFORM_API_BASE=box.base, TWEETFORM_CREDENTIALS=json.dumps(creds), TWEETFORM_OUTPUT_DIR=str(out),
               TWEETFORM_SETTINGS_LOCAL=str(empty), TWEETFORM_BUDGET_USD="unlimited")
    return env


def run_client(client: str, box: SandboxProcess, users: list[int], tmp: Path, token: str, fields: str) -> dict[str, Any]:
    out = Path(tempfile.mkdtemp(prefix=f"{client}-", dir=tmp))
    meter = out.parent / (out.name + ".meter.json")
    env = {**os.environ, METER_ENV: str(meter)}
    if client == "tweetform":
        env.update(tweetform_env(box, out, tmp))
        cmd = tweetform_command(users) + ["-s", "EXTENSIONS=" + json.dumps({"bench.crawl_rate.Meter": 0})]
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "scrapy" if client.startswith("scrapy") else client,
               "--base", box.base, "--token", token, "--users", ",".join(map(str, users)), "--out", str(out), "--fields", fields]
        if client == "scrapy-c64":
            cmd += ["--concurrency", "64"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    sb0 = box.cpu()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - t0
    sb_cpu = box.cpu() - sb0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0 or not meter.exists():
        raise RuntimeError(f"{client} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    m = json.loads(meter.read_text())
    got = read_pages(out)
    shutil.rmtree(out, ignore_errors=True)
    return {
        "client": client, **got,
        "crawl_wall": m["wall"], "crawl_cpu": m["cpu"],
        "proc_wall": wall, "proc_cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "sandbox_cpu": sb_cpu,
    }


def expected_for(users: list[int], per_user: dict[int, dict[str, int]]) -> dict[str, int]:
    return {
        "pages": sum(per_user[u]["pages"] for u in users),
        "accounts": sum(per_user[u]["accounts"] for u in users),
        "checksum": sum(per_user[u]["checksum"] for u in users) % (1 << 64),
    }


def warm_up(box: SandboxProcess, users: list[int], tmp: Path, token: str, fields: str) -> dict[int, dict[str, int]]:
    """Render every page once (tweepy's query, shared by Scrapy and tweetform, then twarc's, which
    adds tweet.fields) so that timed runs read the sandbox's cache; check pages against the truth."""
    per_user: dict[int, dict[str, int]] = {}
    out = tmp / "warm"
    for client in ("tweepy", "twarc2"):
        out.mkdir(exist_ok=True)
        t0 = time.perf_counter()
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", client, "--base", box.base, "--token", token,
               "--users", ",".join(map(str, users)), "--out", str(out), "--fields", fields]
        proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, METER_ENV: str(tmp / "warm.meter.json")},
                              capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"warm-up with {client} failed:\n{proc.stderr[-3000:]}")
        for uid in users:
            got = read_pages_file(out / f"{uid}.jsonl")
            if client == "tweepy":
                per_user[uid] = got
            elif {k: v for k, v in got.items() if k != "bytes"} != {k: v for k, v in per_user[uid].items() if k != "bytes"}:
                raise RuntimeError(f"twarc2 and tweepy disagree on user {uid}: {got} vs {per_user[uid]}")
        shutil.rmtree(out)
        print(f"  warm-up ({client}'s query): {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    for uid in users:
        truth = box.get(f"/_sandbox/truth/followers/{uid}")["ids"]
        if len(truth) != per_user[uid]["accounts"] or sum(truth) % (1 << 64) != per_user[uid]["checksum"]:
            raise RuntimeError(f"user {uid}: pages fetched {per_user[uid]} do not match truth ({len(truth)} followers)")
    return per_user


def read_pages_file(path: Path) -> dict[str, int]:
    pages = accounts = checksum = size = 0
    for line in path.open("rb"):
        pages += 1
        size += len(line)
        for u in json.loads(line).get("data") or []:
            accounts += 1
            checksum = (checksum + int(u["id"])) % (1 << 64)
    return {"pages": pages, "accounts": accounts, "checksum": checksum, "bytes": size}


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    med = statistics.median
    pages = runs[0]["pages"]
    return {
        "client": runs[0]["client"], "pages": pages, "accounts": runs[0]["accounts"], "n": len(runs),
        "crawl_wall": med(r["crawl_wall"] for r in runs),
        "pps": med(r["pages"] / r["crawl_wall"] for r in runs),
        "pps_all": sorted(r["pages"] / r["crawl_wall"] for r in runs),
        "cpu_ms": med(1000 * r["crawl_cpu"] / r["pages"] for r in runs),
        "proc_pps": med(r["pages"] / r["proc_wall"] for r in runs),
        "proc_cpu_ms": med(1000 * r["proc_cpu"] / r["pages"] for r in runs),
        "sandbox_ms": med(1000 * r["sandbox_cpu"] / r["pages"] for r in runs),
    }


def table(summary: dict[float, dict[str, dict[str, Any]]]) -> str:
    head = ("| client | latency | pages | crawl wall s | pages/s | × twarc2 | CPU ms/page | "
            "process CPU ms/page | process pages/s | sandbox CPU ms/page | pages/s per round |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for latency, rows in summary.items():
        base = rows.get("twarc2", {}).get("pps")
        for client, s in rows.items():
            ratio = f"{s['pps'] / base:.2f}" if base else "-"
            lines.append(
                f"| {client} | {int(latency * 1000)} ms | {s['pages']} | {s['crawl_wall']:.2f} | {s['pps']:.1f} | {ratio} | "
                f"{s['cpu_ms']:.2f} | {s['proc_cpu_ms']:.2f} | {s['proc_pps']:.1f} | {s['sandbox_ms']:.2f} | "
                f"{', '.join(f'{x:.0f}' for x in s['pps_all'])} |"
            )
    return "\n".join(lines)


def profile_tweetform(box: SandboxProcess, users: list[int], tmp: Path, prof: Path, pages: int) -> str:
    """cProfile one tweetform crawl at 0 ms; its top functions in ms per page."""
    import pstats

    box.post("/_sandbox/faults", {"latency": 0})
    out = Path(tempfile.mkdtemp(prefix="tweetform-prof-", dir=tmp))
    cmd = [sys.executable, "-m", "cProfile", "-o", str(prof), *tweetform_command(users)[1:]]
    proc = subprocess.run(cmd, cwd=ROOT, env=tweetform_env(box, out, tmp), capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"profiled crawl failed:\n{proc.stderr[-3000:]}")
    raw = pstats.Stats(str(prof)).stats  # type: ignore[attr-defined]

    def name(key: tuple[str, int, str]) -> str:
        path, line, func = key
        for marker in ("/site-packages/", str(ROOT) + "/", "/lib/python3"):
            if marker in path:
                path = path.split(marker, 1)[1]
                break
        return f"{path}:{line}:{func}" if line else func

    lines = [f"profile of one tweetform crawl at 0 ms ({pages} pages, {prof}); times in ms per page"]
    ours = [(k, v) for k, v in raw.items() if "/tweetform/" in k[0] or "/scrapy/" in k[0]]
    for title, rows, idx in (("cumulative, tweetform/ and scrapy/", ours, 3), ("tottime, tweetform/ and scrapy/", ours, 2),
                             ("tottime, everything", list(raw.items()), 2)):
        lines.append(f"--- top 25 by {title} ---")
        for key, val in sorted(rows, key=lambda kv: kv[1][idx], reverse=True)[:25]:
            lines.append(f"{1000 * val[3] / pages:8.2f} cum {1000 * val[2] / pages:8.2f} tot {val[1]:>8} calls  {name(key)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="23 users (~118 pages), 1 round")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3, quick 1)")
    parser.add_argument("--out", help="markdown file for the results (default bench/results-crawl.md; quick: none)")
    parser.add_argument("--profile", metavar="PROF", help="also cProfile one tweetform crawl at 0 ms into PROF and print its top functions")
    # worker mode (internal)
    parser.add_argument("--worker", choices=["twarc2", "tweepy", "scrapy"], help=argparse.SUPPRESS)
    for name in ("--base", "--token", "--users", "--fields"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(args)

    sys.path.insert(0, str(ROOT))
    from tweetform.api.endpoints import V2_USER_FIELDS
    from tweetform.sandbox.credentials import demo_credentials_as_settings

    rounds = args.rounds or (1 if args.quick else 3)
    out_md = args.out or (None if args.quick else str(ROOT / "bench" / "results-crawl.md"))
    token = next(c["bearer_token"] for c in demo_credentials_as_settings() if c["alias"] == "demo-app-1")
    command = "python bench/crawl_rate.py" + "".join(f" {shlex.quote(a)}" for a in (argv if argv is not None else sys.argv[1:]))
    started = time.perf_counter()
    load0 = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="tweetform-bench-"))
    box = start_sandbox(tmp)
    try:
        print(f"sandbox {box.base}; choosing users", file=sys.stderr, flush=True)
        users = pick_users(args.quick)
        seq_users = sequential_subset(users, args.quick)
        per_user = warm_up(box, users, tmp, token, V2_USER_FIELDS)
        expect_all, expect_seq = expected_for(users, per_user), expected_for(seq_users, per_user)
        runs: dict[float, dict[str, list[dict[str, Any]]]] = {lat: {c: [] for c in cs} for lat, cs in CLIENTS.items()}
        for r in range(rounds):
            for latency, clients in CLIENTS.items():
                box.post("/_sandbox/faults", {"latency": latency})
                order = clients[r % len(clients):] + clients[: r % len(clients)]  # rotate to spread drift
                for client in order:
                    subset = seq_users if latency > 0 and client in SEQUENTIAL else users
                    res = run_client(client, box, subset, tmp, token, V2_USER_FIELDS)
                    want = expect_seq if subset is seq_users else expect_all
                    got = {k: res[k] for k in want}
                    if got != want or res["error_records"]:
                        raise RuntimeError(f"{client} at {latency}s collected {got} (+{res['error_records']} error records), expected {want}")
                    runs[latency][client].append(res)
                    print(f"  round {r + 1} {int(latency * 1000):>3} ms {client:<15} {res['pages']:>4} pages "
                          f"{res['pages'] / res['crawl_wall']:7.1f} pages/s {1000 * res['crawl_cpu'] / res['pages']:6.2f} CPU ms/page",
                          file=sys.stderr, flush=True)
        box.post("/_sandbox/faults", {"latency": 0})
        summary = {lat: {c: summarize(rs) for c, rs in cs.items()} for lat, cs in runs.items()}
        md = table(summary)
        acc = expect_all["accounts"] / expect_all["pages"]
        kb = sum(per_user[u]["bytes"] for u in users) / expect_all["pages"] / 1000
        tf = summary[0.1]["tweetform"]
        notes = (
            f"Workload: v2 `/2/users/:id/followers?max_results=1000&user.fields=…` pages of {len(users)} sandbox users "
            f"({expect_all['pages']} pages, {acc:.0f} accounts and ~{kb:.0f} kB of JSON (as tweepy writes it) per page on average; sandbox `{' '.join(SANDBOX_ARGS)}`, "
            f"all pages cached before timing). Sequential clients at 100 ms: {len(seq_users)} of the users "
            f"({expect_seq['pages']} pages). Medians of {rounds} interleaved round(s); every run's pages, accounts and "
            f"id checksum checked equal. pages/s, × twarc2 and CPU ms/page are per crawl (first request to last page "
            f"written); process columns include interpreter start and imports. tweetform is run as "
            f"`scrapy crawl followers -a user_id=<the {len(users)} ids> -a data_type=users -a api=2` (two demo credentials: one "
            f"OAuth 1.0a user, one bearer app) plus `-s EXTENSIONS={{\"bench.crawl_rate.Meter\": 0}}` for the crawl timer. "
            f"A single Scrapy process is CPU-bound whenever 1000 / (CPU ms/page) < concurrency / latency: at 100 ms, "
            f"tweetform's ceiling here is {1000 / tf['cpu_ms']:.0f} pages/s for 32 × 10 = 320 pages/s of open requests. Machine: {os.cpu_count()} CPUs, "
            f"{platform.python_implementation()} {platform.python_version()}, load average {load0[0]:.2f} → {os.getloadavg()[0]:.2f}; "
            f"total {time.perf_counter() - started:.0f} s."
        )
        print(md)
        print("\n" + notes)
        if args.profile:
            print(profile_tweetform(box, users, tmp, Path(args.profile), expect_all["pages"]))
        if out_md:
            Path(out_md).write_text(
                "# Crawl rate: tweetform vs bare Scrapy, twarc2 and tweepy\n\n"
                f"Command (repository root): `{command}`  \n"
                f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n{md}\n\n{notes}\n"
            )
            print(f"\nwritten to {out_md}", file=sys.stderr)
    finally:
        box.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
