#!/usr/bin/env python
"""How fast can the sandbox serve pages, and is it ever what limits a crawler?

Measured in CPU time (the machine is small and shared, wall clocks are noisy),
side by side in one run, for three page kinds at 0 latency:

* ``ids``    - v1.1 ``/1.1/followers/ids.json?count=5000``      (5,000-id pages)
* ``users``  - v2 ``/2/users/:id/followers?max_results=1000``   (1,000-user pages)
* ``tweets`` - v2 ``/2/users/:id/tweets?max_results=100``       (100-tweet pages)

1. **Sandbox capacity.** The sandbox runs as a subprocess (limits raised out of
   reach); an aiohttp load client walks real pagination (cold: first render of
   each page, the sandbox caches rendered bodies) and then re-fetches the same
   pages for a fixed time (warm). Capacity = pages / sandbox CPU seconds, read
   from ``/proc/<pid>/task/*/schedstat`` (ns; falls back to utime + stime of
   ``/proc/<pid>/stat``); wall-clock pages/s is shown too.
2. **One bare Scrapy process.** This file re-runs itself as a Scrapy worker
   (``CrawlerProcess`` with default settings except ROBOTSTXT_OBEY=False,
   LOG_LEVEL=WARNING, TELNETCONSOLE_ENABLED=False, REMOTE_CONTROL_ENABLED=False,
   plus a bearer ``Authorization`` header) that fetches the same pages in 16
   chains, json-parses every body and reads its cursor. Consumption =
   pages / Scrapy CPU seconds between ``spider_opened`` and the last response
   (getrusage, start-up excluded).

Target (issue): capacity >= 3x what one bare Scrapy process consumes, cold and
warm. Kinds that miss it are profiled (cProfile on a short cold run, unless
``--no-profile``) and their hot spots reported.

    .venv/bin/python bench/sandbox_rate.py            # full run (~1.5-2 min)
    .venv/bin/python bench/sandbox_rate.py --quick    # smaller run (~1 min)

Prints a markdown table and writes it, with the command, to
``bench/results-sandbox.md`` (``--out``). Everything binds 127.0.0.1; every
subprocess is stopped before exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tweetform.testing.servers import SandboxProcess  # noqa: E402
BIG = 10**9  # "no rate limit"

USER_FIELDS = "created_at,description,public_metrics,protected,verified"
# the tweet fields tweetform's crawler asks for (tweetform/api/endpoints.py), no expansions
TWEET_FIELDS = (
    "attachments,author_id,context_annotations,conversation_id,created_at,edit_history_tweet_ids,"
    "entities,geo,id,in_reply_to_user_id,lang,possibly_sensitive,public_metrics,referenced_tweets,"
    "reply_settings,source,text,withheld"
)
SCRAPY_CHAINS = 16  # = Scrapy's default CONCURRENT_REQUESTS


# --- page kinds ----------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    name: str
    label: str
    endpoint: str  # rate-limit key
    examples: tuple[str, ...]  # /_sandbox/examples traits whose users are walked
    first: Callable[[str, int], str]
    next: Callable[[str, int, dict], str | None]
    items: Callable[[dict], int]


def _ids_url(base: str, uid: int, cursor: int = -1) -> str:
    return f"{base}/1.1/followers/ids.json?user_id={uid}&count=5000&cursor={cursor}"


def _users_url(base: str, uid: int, token: str | None = None) -> str:
    url = f"{base}/2/users/{uid}/followers?max_results=1000&user.fields={USER_FIELDS}"
    return url + (f"&pagination_token={token}" if token else "")


def _tweets_url(base: str, uid: int, token: str | None = None) -> str:
    url = f"{base}/2/users/{uid}/tweets?max_results=100&tweet.fields={TWEET_FIELDS}"
    return url + (f"&pagination_token={token}" if token else "")


def _v2_next(make: Callable[..., str]) -> Callable[[str, int, dict], str | None]:
    def nxt(base: str, uid: int, page: dict) -> str | None:
        token = page.get("meta", {}).get("next_token")
        return make(base, uid, token) if token else None

    return nxt


KINDS: dict[str, Kind] = {
    "ids": Kind(
        "ids", "5,000-id pages (v1.1 followers/ids)", "/followers/ids", ("many_followers", "long_timeline"),
        _ids_url, lambda base, uid, page: _ids_url(base, uid, page["next_cursor"]) if page.get("next_cursor") else None,
        lambda page: len(page.get("ids", ())),
    ),
    "users": Kind(
        "users", "1,000-user pages (v2 followers)", "/2/users/:id/followers", ("many_followers", "long_timeline"),
        _users_url, _v2_next(_users_url), lambda page: len(page.get("data", ())),
    ),
    "tweets": Kind(
        "tweets", "100-tweet pages (v2 user tweets)", "/2/users/:id/tweets", ("long_timeline",),
        _tweets_url, _v2_next(_tweets_url), lambda page: len(page.get("data", ())),
    ),
}


# --- the sandbox subprocess -------------------------------------------------------------


def walked_users(examples: dict[str, list[int]], kind: "Kind", limit: int | None) -> list[int]:
    uids = list(dict.fromkeys(uid for trait in kind.examples for uid in examples.get(trait, ())))
    return uids[:limit] if limit else uids


def sandbox_args(users: int, seed: int) -> list[str]:
    limits = [a for k in KINDS.values() for a in ("--limit", f"{k.endpoint}={BIG}")]
    return ["--host", "127.0.0.1", "--users", str(users), "--seed", str(seed), "--window", "900",
            "--latency", "0", *limits]


def start_sandbox(users: int, seed: int, cmd: list[str] | None = None) -> SandboxProcess:
    """``python -m tweetform.sandbox`` (or ``cmd``, which must print the same 'listening on' line)."""
    return SandboxProcess(*sandbox_args(users, seed), cmd=cmd, cwd=ROOT, new_session=True)


def bearer() -> str:
    sys.path.insert(0, str(ROOT))
    from tweetform.sandbox.credentials import demo_credentials_as_settings

    return next(c["bearer_token"] for c in demo_credentials_as_settings() if c["alias"] == "demo-app-1")


# --- load client (aiohttp) -------------------------------------------------------------------


@dataclass
class Phase:
    pages: int = 0
    items: int = 0
    bytes: int = 0
    wall: float = 0.0
    cpu: float = 0.0  # sandbox CPU seconds
    urls: list[str] = field(default_factory=list)
    walks: dict[int, tuple[int, bool]] = field(default_factory=dict)  # uid -> (items, walked to the end)

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu / self.pages if self.pages else float("nan")

    @property
    def capacity(self) -> float:
        return self.pages / self.cpu if self.cpu > 0 else float("inf")

    @property
    def wall_rate(self) -> float:
        return self.pages / self.wall if self.wall > 0 else float("inf")


async def _fetch(session: Any, url: str, headers: dict[str, str]) -> bytes:
    async with session.get(url, headers=headers) as resp:
        body = await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{url} -> HTTP {resp.status}: {body[:300]!r}")
        return body


async def _cold(sandbox: SandboxProcess, kind: Kind, uids: list[int], max_pages: int, token: str) -> Phase:
    import aiohttp

    phase = Phase()
    headers = {"Authorization": f"Bearer {token}"}

    async def walk(session: Any, uid: int) -> None:
        url: str | None = kind.first(sandbox.base, uid)
        n = 0
        while url and n < max_pages:
            body = await _fetch(session, url, headers)
            page = json.loads(body)
            phase.pages += 1
            phase.items += kind.items(page)
            phase.bytes += len(body)
            phase.urls.append(url)
            n += 1
            url = kind.next(sandbox.base, uid, page)
            items, _ = phase.walks.get(uid, (0, False))
            phase.walks[uid] = (items + kind.items(page), url is None)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=len(uids))) as session:
        cpu0, t0 = sandbox.cpu(), time.perf_counter()
        await asyncio.gather(*(walk(session, uid) for uid in uids))
        phase.wall, phase.cpu = time.perf_counter() - t0, sandbox.cpu() - cpu0
    return phase


async def _warm(sandbox: SandboxProcess, urls: list[str], seconds: float, concurrency: int, token: str) -> Phase:
    import aiohttp

    phase = Phase()
    headers = {"Authorization": f"Bearer {token}"}
    counter = iter(range(10**12))

    async def worker(session: Any, deadline: float) -> None:
        while time.perf_counter() < deadline:
            body = await _fetch(session, urls[next(counter) % len(urls)], headers)
            phase.pages += 1
            phase.bytes += len(body)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        cpu0, t0 = sandbox.cpu(), time.perf_counter()
        await asyncio.gather(*(worker(session, t0 + seconds) for _ in range(concurrency)))
        phase.wall, phase.cpu = time.perf_counter() - t0, sandbox.cpu() - cpu0
    return phase


# --- the bare Scrapy consumer (this file, re-run with --scrapy-worker) -------------------------------


def scrapy_worker(spec_path: str) -> None:
    """Fetch spec["urls"] in SCRAPY_CHAINS chains for spec["seconds"]; print one RESULT line."""
    spec = json.loads(Path(spec_path).read_text())
    import scrapy
    from scrapy import signals
    from scrapy.crawler import CrawlerProcess

    urls: list[str] = spec["urls"]
    headers = {"Authorization": f"Bearer {spec['token']}"}
    seconds: float = spec["seconds"]
    state: dict[str, Any] = {"pages": 0, "items": 0, "bytes": 0, "failures": 0, "last": None, "start": None}

    def usage() -> tuple[float, float]:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime, time.perf_counter()

    class PageSpider(scrapy.Spider):
        name = "sandbox_rate"

        @classmethod
        def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> "PageSpider":
            spider = super().from_crawler(crawler, *args, **kwargs)
            crawler.signals.connect(spider.opened, signal=signals.spider_opened)
            return spider

        def opened(self, spider: Any) -> None:
            state["start"] = usage()
            self.deadline = time.perf_counter() + seconds

        async def start(self):  # type: ignore[override]
            for k in range(SCRAPY_CHAINS):
                yield self.request(k)

        def request(self, k: int) -> Any:
            return scrapy.Request(urls[k % len(urls)], headers=headers, dont_filter=True,
                                  callback=self.parse, errback=self.failed, cb_kwargs={"k": k})

        def parse(self, response: Any, k: int) -> Any:
            page = json.loads(response.body)
            cursor = page.get("next_cursor") if "ids" in page else page.get("meta", {}).get("next_token")
            state["pages"] += 1
            state["items"] += len(page.get("ids") or page.get("data") or ())
            state["bytes"] += len(response.body)
            state["last"] = usage()
            if cursor is not None and time.perf_counter() < self.deadline:
                yield self.request(k + SCRAPY_CHAINS)

        def failed(self, failure: Any) -> Any:
            state["failures"] += 1
            k = failure.request.cb_kwargs["k"]
            if time.perf_counter() < self.deadline:
                yield self.request(k + SCRAPY_CHAINS)

    process = CrawlerProcess(settings={
        "ROBOTSTXT_OBEY": False,
        "LOG_LEVEL": "WARNING",
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,
    })
    process.crawl(PageSpider)
    process.start()
    (cpu0, t0), (cpu1, t1) = state["start"], state["last"] or state["start"]
    total_cpu, _ = usage()
    print("RESULT " + json.dumps({
        "pages": state["pages"], "items": state["items"], "bytes": state["bytes"], "failures": state["failures"],
        "cpu": cpu1 - cpu0, "wall": t1 - t0, "process_cpu": total_cpu,
    }), flush=True)


@dataclass
class ScrapyRun:
    pages: int
    items: int
    failures: int
    cpu: float  # Scrapy CPU seconds (crawl only)
    wall: float
    process_cpu: float  # including interpreter and Scrapy start-up
    sandbox_cpu: float  # sandbox CPU seconds while serving it

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu / self.pages if self.pages else float("nan")

    @property
    def rate(self) -> float:
        return self.pages / self.cpu if self.cpu > 0 else float("inf")

    @property
    def wall_rate(self) -> float:
        return self.pages / self.wall if self.wall > 0 else float("inf")

    @property
    def sandbox_cpu_ms(self) -> float:
        return 1000 * self.sandbox_cpu / self.pages if self.pages else float("nan")


def run_scrapy(sandbox: SandboxProcess, urls: list[str], seconds: float, token: str, workdir: str) -> ScrapyRun:
    spec = Path(workdir) / "spec.json"
    spec.write_text(json.dumps({"urls": urls, "seconds": seconds, "token": token}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRAPY_")}
    cpu0 = sandbox.cpu()
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--scrapy-worker", str(spec)],
                            cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=seconds + 120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    sandbox_cpu = sandbox.cpu() - cpu0
    line = next((l for l in out.splitlines() if l.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"scrapy worker failed (rc={proc.returncode}): {err[-3000:]}")
    r = json.loads(line[len("RESULT "):])
    return ScrapyRun(r["pages"], r["items"], r["failures"], r["cpu"], r["wall"], r["process_cpu"], sandbox_cpu)


# --- profiling the sandbox ---------------------------------------------------------------------------


def profile_worker(prefix: str, sandbox_argv: list[str]) -> None:
    """The sandbox app in this process, under cProfile once its world and examples are built.

    SIGUSR1 writes the profile so far to ``<prefix>.<n>`` (atomically) and starts a fresh one, so the
    parent can profile page kinds one at a time; SIGTERM/SIGINT stop it.
    """
    import cProfile

    from aiohttp import web

    sys.path.insert(0, str(ROOT))
    from tweetform.sandbox.config import add_arguments, from_args
    from tweetform.sandbox.server import Sandbox as SandboxApp

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    config = from_args(parser.parse_args(sandbox_argv))
    sandbox = SandboxApp(config)
    sandbox.world.examples()  # not profiled: start-up, not serving
    state = {"prof": cProfile.Profile(), "n": 0}

    def dump() -> None:
        prof = state["prof"]
        prof.disable()
        tmp = f"{prefix}.tmp"
        prof.dump_stats(tmp)
        os.replace(tmp, f"{prefix}.{state['n']}")
        state["n"] += 1
        state["prof"] = cProfile.Profile()
        state["prof"].enable()

    async def serve() -> None:
        runner = web.AppRunner(sandbox.app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, dump)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print(f"profiled sandbox listening on http://{config.host}:{runner.addresses[0][1]}", flush=True)
        state["prof"].enable()
        await stop.wait()
        state["prof"].disable()
        await runner.cleanup()

    asyncio.run(serve())


def _where(key: tuple[str, int, str]) -> str:
    path, line, func = key
    if path == "~":
        return func
    try:
        path = str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        parts = Path(path).parts
        path = "/".join(parts[parts.index("site-packages") + 1 :]) if "site-packages" in parts else Path(path).name
    return f"{path}:{line}:{func}"


def _hotspots(kind: Kind, pages: int, prof_file: str, top: int) -> str:
    import pstats

    stats = pstats.Stats(prof_file).stats  # type: ignore[attr-defined]
    handle = [v[3] for k, v in stats.items() if k[0].endswith("sandbox/server.py") and k[2] == "handle_api"]
    total = sum(handle)
    idle = ("poll", "select")  # the event loop waiting for requests
    own = sorted(((v[2], v[3], v[1], k) for k, v in stats.items() if not any(w in k[2] for w in idle)),
                 reverse=True)[:top]
    cum = sorted(((v[3], v[2], v[1], k) for k, v in stats.items()
                  if "tweetform/sandbox" in k[0] and not k[2].startswith("<lambda") and k[2] != "handle_api"),
                 reverse=True)[:top]
    lines = [f"**{kind.label}**, {pages} cold pages under cProfile: `server.py:handle_api` "
             f"{total:.2f} s cumulative ({1000 * total / max(pages, 1):.0f} ms/page, profiler overhead included)",
             "", "| by own time | tottime s | cumtime s | calls |", "|---|---:|---:|---:|"]
    lines += [f"| `{_where(k)}` | {tt:.3f} | {ct:.3f} | {n} |" for tt, ct, n, k in own]
    lines += ["", "| by cumulative time (tweetform/sandbox) | cumtime s | tottime s | calls |", "|---|---:|---:|---:|"]
    lines += [f"| `{_where(k)}` | {ct:.3f} | {tt:.3f} | {n} |" for ct, tt, n, k in cum]
    return "\n".join(lines)


def profile(kinds: list[Kind], args: argparse.Namespace, pages: dict[str, int], token: str, workdir: str) -> str:
    """Cold walks of each kind against a fresh sandbox under cProfile; markdown hot-spot tables."""
    prefix = str(Path(workdir) / "sandbox.prof")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--profile-worker", prefix, "--", "--port", "0",
           *sandbox_args(args.users, args.seed)]
    sandbox = start_sandbox(args.users, args.seed, cmd)
    sections = []
    try:
        examples = sandbox.get("/_sandbox/examples")
        sandbox.proc.send_signal(signal.SIGUSR1)  # drop what the examples request cost
        n = 1
        for kind in kinds:
            _wait_for(f"{prefix}.{n - 1}")
            phase = asyncio.run(_cold(sandbox, kind, walked_users(examples, kind, args.walk_users), pages[kind.name], token))
            sandbox.proc.send_signal(signal.SIGUSR1)
            _wait_for(f"{prefix}.{n}")
            sections.append(_hotspots(kind, phase.pages, f"{prefix}.{n}", args.profile_top))
            n += 1
    finally:
        sandbox.stop()
    return "\n\n".join(sections)


def _wait_for(path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise RuntimeError(f"profiled sandbox wrote no {path}")
        time.sleep(0.05)


# --- main ---------------------------------------------------------------------------------------------


def fmt(x: float, digits: int = 0) -> str:
    if x != x:
        return "n/a"
    if x == float("inf"):
        return "inf"
    return f"{x:,.{digits}f}"


def per_kind(defaults: dict[str, int], spec: str | None) -> dict[str, int]:
    out = dict(defaults)
    for item in (spec or "").split(","):
        if item:
            name, _, n = item.partition("=")
            if name not in KINDS:
                raise SystemExit(f"unknown page kind {name!r} (ids, users, tweets)")
            out[name] = int(n)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller run (~1 min)")
    parser.add_argument("--users", type=int, default=100_000, help="sandbox world size (default 100000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kinds", default="ids,users,tweets", help="comma list of ids,users,tweets")
    parser.add_argument("--walk-users", type=int, default=None,
                        help="users walked per kind, concurrently (default: all example users of its traits, <= 6)")
    parser.add_argument("--cold-pages", default=None,
                        help="max cold pages per walked user, per kind, e.g. ids=99,users=8,tweets=99")
    parser.add_argument("--warm-seconds", type=float, default=None, help="duration of each warm phase")
    parser.add_argument("--scrapy-seconds", type=float, default=None, help="duration of each Scrapy crawl")
    parser.add_argument("--concurrency", type=int, default=8, help="load-client connections in warm phases")
    parser.add_argument("--target", type=float, default=3.0, help="required capacity / Scrapy ratio")
    parser.add_argument("--no-profile", action="store_true", help="do not profile kinds that miss the target")
    parser.add_argument("--profile-pages", default=None,
                        help="cold pages per walked user in the profile run, per kind, e.g. ids=99,users=2,tweets=10")
    parser.add_argument("--profile-top", type=int, default=10, help="rows per hot-spot table")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results-sandbox.md"), help="markdown output ('-': none)")
    parser.add_argument("--scrapy-worker", metavar="SPEC", help=argparse.SUPPRESS)
    parser.add_argument("--profile-worker", metavar="PREFIX", help=argparse.SUPPRESS)
    parser.add_argument("sandbox_argv", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.scrapy_worker:
        scrapy_worker(args.scrapy_worker)
        return 0
    if args.profile_worker:
        profile_worker(args.profile_worker, args.sandbox_argv)
        return 0
    if args.sandbox_argv:
        parser.error(f"unexpected arguments: {' '.join(args.sandbox_argv)}")

    quick = args.quick
    cold_pages = per_kind({"ids": 99, "users": 3 if quick else 10, "tweets": 10 if quick else 99}, args.cold_pages)
    profile_pages = per_kind({"ids": 5 if quick else 99, "users": 1 if quick else 2, "tweets": 3 if quick else 10},
                             args.profile_pages)
    args.warm_seconds = args.warm_seconds or (3.0 if quick else 8.0)
    args.scrapy_seconds = args.scrapy_seconds or (3.0 if quick else 8.0)
    kinds = [KINDS[k] for k in args.kinds.split(",") if k]
    command = shlex.join([".venv/bin/python", "bench/sandbox_rate.py", *(argv if argv is not None else sys.argv[1:])])
    token = bearer()

    # SIGTERM -> KeyboardInterrupt, so the finally blocks stop the subprocesses
    def interrupted(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    load_before = _loadavg()
    started = time.perf_counter()
    cold: dict[str, Phase] = {}
    warm: dict[str, Phase] = {}
    engagement_cpu = float("nan")
    scrapy_runs: dict[str, ScrapyRun] = {}
    with tempfile.TemporaryDirectory(prefix="tweetform-bench-") as workdir:
        t = time.perf_counter()
        sandbox = start_sandbox(args.users, args.seed)
        print(f"sandbox pid {sandbox.pid} at {sandbox.base} (start {time.perf_counter() - t:.1f} s, "
              f"{sandbox.cpu():.1f} CPU s)", file=sys.stderr)
        try:
            # the engagement index (public_metrics' replies, quotes, retweets, likes) is built once per
            # sandbox, on the first answer that shows metrics: built here, timed apart from the cold pages
            cpu0 = sandbox.cpu()
            sandbox.get("/_sandbox/truth/engaged/12")
            engagement_cpu = sandbox.cpu() - cpu0
            print(f"engagement index built in {engagement_cpu:.2f} CPU s", file=sys.stderr)
            examples = sandbox.get("/_sandbox/examples")
            for kind in kinds:
                uids = walked_users(examples, kind, args.walk_users)
                c = cold[kind.name] = asyncio.run(_cold(sandbox, kind, uids, cold_pages[kind.name], token))
                w = warm[kind.name] = asyncio.run(_warm(sandbox, c.urls, args.warm_seconds, args.concurrency, token))
                s = scrapy_runs[kind.name] = run_scrapy(sandbox, c.urls, args.scrapy_seconds, token, workdir)
                print(f"{kind.name}: cold {c.pages} pages {c.cpu_ms:.2f} ms CPU/page; warm {w.pages} pages "
                      f"{w.cpu_ms:.2f} ms/page; scrapy {s.pages} pages {s.cpu_ms:.2f} ms/page "
                      f"(sandbox {s.sandbox_cpu_ms:.2f} ms/page meanwhile)", file=sys.stderr)
            # sanity: complete walks returned every id the ground truth has
            checks = []
            for kind in kinds:
                what = "timeline" if kind.name == "tweets" else "followers"
                done = [(uid, n) for uid, (n, complete) in cold[kind.name].walks.items() if complete]
                same = sum(n == len(sandbox.get(f"/_sandbox/truth/{what}/{uid}")["ids"]) for uid, n in done)
                checks.append(f"{kind.name}: {len(cold[kind.name].walks)} users walked, {len(done)} to the end, "
                              f"{same} of those matching /_sandbox/truth/{what}")
        finally:
            sandbox.stop()

        missed = [k for k in kinds if min(cold[k.name].capacity, warm[k.name].capacity) < args.target * scrapy_runs[k.name].rate]
        hotspots = ""
        if missed and not args.no_profile:
            print(f"profiling cold pages of {', '.join(k.name for k in missed)} ...", file=sys.stderr)
            hotspots = profile(missed, args, profile_pages, token, workdir)
    elapsed = time.perf_counter() - started

    rows = [
        "| page kind | items/page | sandbox CPU ms/page cold (render) | warm | sandbox capacity p/s (CPU) cold | warm "
        "| sandbox wall p/s cold | warm | Scrapy CPU ms/page | Scrapy p/s (CPU) | Scrapy wall p/s "
        "| sandbox CPU ms/page serving Scrapy | ratio cold | ratio warm | ≥ 3× |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|",
    ]
    for kind in kinds:
        c, w, s = cold[kind.name], warm[kind.name], scrapy_runs[kind.name]
        rc, rw = c.capacity / s.rate, w.capacity / s.rate
        ok = "yes" if min(rc, rw) >= args.target else ("warm only" if rw >= args.target else "**no**")
        rows.append(
            f"| {kind.label} | {fmt(c.items / c.pages)} | {fmt(c.cpu_ms, 2)} | {fmt(w.cpu_ms, 2)} "
            f"| {fmt(c.capacity)} | {fmt(w.capacity)} | {fmt(c.wall_rate)} | {fmt(w.wall_rate)} "
            f"| {fmt(s.cpu_ms, 2)} | {fmt(s.rate)} | {fmt(s.wall_rate)} | {fmt(s.sandbox_cpu_ms, 2)} "
            f"| {fmt(rc, 1)}× | {fmt(rw, 1)}× | {ok} |"
        )
    table = "\n".join(rows)
    details = [
        f"- pages: " + "; ".join(
            f"{k.name} cold {cold[k.name].pages} (≤ {cold_pages[k.name]} per user × {len(cold[k.name].walks)} users), "
            f"warm {warm[k.name].pages}, Scrapy {scrapy_runs[k.name].pages} ({scrapy_runs[k.name].failures} failed)"
            for k in kinds),
        "- " + "; ".join(checks),
        f"- once per sandbox, before the cold pages: the engagement index (replies, quotes, retweets and likes "
        f"behind public_metrics), {engagement_cpu:.2f} CPU s",
        f"- machine: {os.cpu_count()} CPUs ({_cpu_model()}), load before run {load_before}, Python "
        f"{platform.python_version()}, {_versions()}; run took {elapsed:.0f} s",
    ]
    notes = (
        "Capacity = pages / sandbox CPU seconds (sum of /proc/<pid>/task/*/schedstat on-CPU ns, finer than "
        "the 10 ms ticks of /proc/<pid>/stat utime+stime; the sandbox is one asyncio process, so this is what "
        "one core can serve). *Cold* = first fetch of each page in a fresh sandbox "
        "(pagination walked by an aiohttp client, one connection per walked user): it includes rendering the "
        "body, which the sandbox then caches; the world's own memo caches may already hold parts computed for "
        "an earlier kind. *Warm* = the same pages re-fetched for a fixed time by "
        f"{args.concurrency} connections (cached bodies: auth, rate limiting, headers, HTTP). Scrapy = one "
        f"bare `CrawlerProcess` (defaults + ROBOTSTXT_OBEY=False, LOG_LEVEL=WARNING, TELNETCONSOLE_ENABLED=False, "
        f"REMOTE_CONTROL_ENABLED=False, bearer header) fetching the same pages in {SCRAPY_CHAINS} chains, "
        "json-parsing each body; its CPU is getrusage(RUSAGE_SELF) from spider_opened to the last response "
        "(start-up excluded); it is served warm pages, its CPU per page does not depend on that. "
        "Ratio = sandbox capacity / Scrapy pages per CPU second; target ≥ 3×. Wall-clock rates share the "
        "machine's cores between client and sandbox and are indicative only."
    )
    report = "\n".join(["## Sandbox rate vs one bare Scrapy process", "", "```", command, "```", "",
                        f"Run {time.strftime('%Y-%m-%d %H:%M %Z')}, 0 latency, `--users {args.users}`, "
                        "rate limits raised to 10^9.", "", table, "", *details, "", notes])
    if missed:
        names = ", ".join(k.name for k in missed)
        report += f"\n\n**Target missed** for: {names}."
        if hotspots:
            report += "\n\n" + hotspots
    print(report)
    if args.out != "-":
        Path(args.out).write_text(report + "\n")
        print(f"\nwritten to {args.out}", file=sys.stderr)
    return 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def _versions() -> str:
    from importlib.metadata import version

    return ", ".join(f"{p} {version(p)}" for p in ("scrapy", "twisted", "aiohttp"))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
