"""``scrapy worker [--processes N] [--spiders a,b]``: take every kind of crawl work from Redis.

One worker process runs every spider (one Scrapy crawler each) until stopped
(SIGINT/SIGTERM: unfinished requests are handed back to the queue).
``--processes N`` runs N such processes on this host — tweetf0rm's several
crawler processes per node — and restarts any that dies.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from scrapy.commands import ScrapyCommand
from scrapy.spiderloader import get_spider_loader

from tweetform.config import uses_redis
from tweetform import exitcodes
from tweetform.commands.errors import fail, number, one_line_errors, require_redis, with_redis_errors
from tweetform.logs import quiet_scrapy

class Command(ScrapyCommand):
    requires_project = True

    def syntax(self) -> str:
        return "[--processes N] [--spiders friends,followers,...]"

    def short_desc(self) -> str:
        return "Run a distributed worker: every crawl type, jobs from Redis"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        one_line_errors(parser)  # a bad option value: one line, exit 2
        parser.add_argument("--processes", type=number(int, 1, 256), default=1, help="worker processes on this host (default 1)")
        parser.add_argument("--spiders", default="", help="crawl types to take (default: every spider of the project)")

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        """Checked before Scrapy starts logging, so a mistake is one line."""
        from tweetform.cost import default_budget_usd  # here: every scrapy start imports this module
        from tweetform.credentials import CredentialError, load_credentials
        from tweetform.proxies.config import ProxyConfigError
        from tweetform.proxies.config import plan as proxy_plan

        super().process_options(args, opts)
        assert self.settings is not None
        quiet_scrapy(self.settings)  # Scrapy's start-up dumps and stats at DEBUG (tweetform.logs)
        if not uses_redis(self.settings):
            fail("REDIS_URL is not set: a worker takes its jobs from Redis")
        require_redis(self.settings)  # unreachable: one line naming the URL without its password
        try:
            creds = load_credentials(self.settings, "all")  # Bluesky accounts count: a lab may run Bluesky jobs only
            if not creds:
                fail("no API credentials configured: set TWEETFORM_CREDENTIALS or TWEETFORM_CREDENTIALS_FILE")
            proxy_plan(self.settings, creds)  # a bad proxy setting stops here, in one line
            default_budget_usd(self.settings)  # TWEETFORM_BUDGET_USD: an amount or unlimited
        except (CredentialError, ProxyConfigError, ValueError) as exc:
            fail(str(exc))
        if not self.settings.getbool("TWEETFORM_COLLECT"):  # collect mode: this host writes nothing
            from tweetform.preflight import output_dir_problem

            problem = output_dir_problem(str(self.settings.get("TWEETFORM_OUTPUT_DIR") or "data"))
            if problem:
                fail(problem)
        known = get_spider_loader(self.settings).list()
        unknown = [n for n in opts.spiders.split(",") if n and n not in known]
        if not opts.spiders.strip(","):
            opts.spiders = ",".join(known)
        if unknown:
            fail(f"unknown spider(s) {', '.join(map(repr, unknown))}; the spiders are: {', '.join(sorted(known))}")

    @with_redis_errors
    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None and self.crawler_process is not None
        names = [n for n in opts.spiders.split(",") if n]
        loader = get_spider_loader(self.settings)
        unknown = [n for n in names if n not in loader.list()]
        if unknown:
            print(f"tweetform: unknown spider(s) {unknown}", file=sys.stderr)
            self.exitcode = 2
            return
        if opts.processes > 1:
            self.exitcode = supervise(opts.processes, names, sys.argv)
            return
        crawlers = [self.crawler_process.create_crawler(name) for name in names]
        for crawler in crawlers:
            self.crawler_process.crawl(crawler)
        self.crawler_process.start()
        self.exitcode = exitcodes.for_crawlers(crawlers, bootstrap_failed=self.crawler_process.bootstrap_failed, worker=True)


QUICK_CRASH = 10.0  # seconds: a worker process that crashes sooner is restarted with back-off
RESTART_BACKOFF_MAX = 60.0


def supervise(n: int, names: list[str], argv: list[str]) -> int:
    """Keep n single-process workers running; restart any that dies; stop all on a signal."""
    child_args = list(argv[1:])
    if "--processes" in child_args:
        i = child_args.index("--processes")
        del child_args[i : i + 2]
    child_args = [a for a in child_args if not a.startswith("--processes=")]
    # scrapy.cmdline took the command name out of sys.argv: put it back, or every child is "Unknown command"
    cmd = [sys.executable, "-m", "scrapy", "worker", *child_args]
    children = {p.pid: p for p in (subprocess.Popen(cmd) for _ in range(n))}
    started = {pid: time.monotonic() for pid in children}
    quick_crashes = 0  # crashes in a row of processes that lived less than QUICK_CRASH seconds
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    ended_with: list[int] = []
    while children:
        pid, status = os.wait()  # blocks until a worker process ends
        ended = children.pop(pid, None)
        if ended is None:
            continue
        ended.returncode = os.waitstatus_to_exitcode(status)
        # only a crash is restarted: a worker that ended by design (idle with TWEETFORM_EXIT_WHEN_IDLE) or
        # for a reason a restart cannot fix (credentials rejected, Redis away, bad input) would only loop
        lived = time.monotonic() - started.pop(pid, 0.0)
        if not stopping and (ended.returncode < 0 or ended.returncode == exitcodes.ERROR):
            # a process that crashes at start would otherwise be restarted in a tight loop
            quick_crashes = quick_crashes + 1 if lived < QUICK_CRASH else 0
            delay = min(RESTART_BACKOFF_MAX, 2.0 ** (quick_crashes - 1)) if quick_crashes else 0.0
            print(f"tweetform: worker process {pid} ended ({ended.returncode}); starting another"
                  + (f" in {delay:.0f} s" if delay else ""), file=sys.stderr, flush=True)
            until = time.monotonic() + delay  # the supervisor runs no reactor: a plain wait, cut short by a signal
            while not stopping and time.monotonic() < until:
                time.sleep(0.2)
            if stopping:
                continue
            child = subprocess.Popen(cmd)
            children[child.pid] = child
            started[child.pid] = time.monotonic()
        elif not stopping:
            ended_with.append(ended.returncode)
            if ended.returncode != exitcodes.DONE:
                name = exitcodes.NAMES.get(ended.returncode, ended.returncode)
                print(f"tweetform: worker process {pid} ended ({name}); not restarted", file=sys.stderr, flush=True)
    for code in (exitcodes.NO_CREDENTIALS, exitcodes.UNREACHABLE, exitcodes.BAD_INPUT):
        if code in ended_with:
            return code
    return exitcodes.DONE
