"""Cost bookkeeping's CPU per page, against a page's whole CPU (target: at most 5 %).

Real ``scrapy crawl`` processes against a local sandbox, each with a budget (so
every request is reserved before it is sent and settled at its answer). The
bookkeeping is timed where it runs: the two components are replaced by
subclasses that add ``time.process_time()`` around their own work only —
:meth:`CostMiddleware._charge_into` (the billing rule and the UTC-day dedupe) and its
settling of the reservation, and :class:`BudgetMiddleware`'s ``process_request``
(the reservation) and ``process_response``. The crawl's CPU is
``time.process_time()`` from spider_opened to spider_closed. Both are divided by
the pages written.

Crawls (API v2, world of 20,000 users):

* ``followers users`` — followers lists with user objects, 1,000 accounts per page;
* ``friends ids d2``  — a depth-2 friends network (many short pages);
* ``timeline``        — tweets with twarc2's expansions (``includes`` billed too).

Usage (from the repository root)::

    .venv/bin/python bench/cost_bench.py            # prints a markdown table
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from tweetform.cost.budget import BudgetMiddleware  # noqa: E402
from tweetform.cost.middleware import CostMiddleware  # noqa: E402

OUT_ENV = "COST_BENCH_OUT"
_totals = {"bookkeeping": 0.0, "crawl": 0.0, "pages": 0}


def _dump(crawler: Any) -> None:
    _totals["pages"] = int(crawler.stats.get_value("tweetform/pages/written", 0))
    _totals["usd"] = crawler.stats.get_value("tweetform/cost/usd", 0.0)
    Path(os.environ[OUT_ENV]).write_text(json.dumps(_totals))


class TimedCostMiddleware(CostMiddleware):
    @classmethod
    def from_crawler(cls, crawler: Any) -> "TimedCostMiddleware":
        from scrapy import signals

        mw = cls(crawler)
        started: dict[str, float] = {}
        crawler.signals.connect(lambda: started.setdefault("t", time.process_time()), signal=signals.spider_opened, weak=False)

        def closed() -> None:
            _totals["crawl"] = time.process_time() - started["t"]
            _dump(crawler)

        crawler.signals.connect(closed, signal=signals.spider_closed, weak=False)
        return mw

    def _charge_into(self, *args: Any) -> None:
        t = time.process_time()
        try:
            super()._charge_into(*args)
        finally:
            _totals["bookkeeping"] += time.process_time() - t

    def _settle(self, *args: Any) -> None:
        t = time.process_time()
        try:
            super()._settle(*args)
        finally:
            _totals["bookkeeping"] += time.process_time() - t


class TimedBudgetMiddleware(BudgetMiddleware):
    async def process_request(self, request: Any) -> Any:
        t = time.process_time()
        try:
            return await super().process_request(request)  # never waits here: the budget is large
        finally:
            _totals["bookkeeping"] += time.process_time() - t

    def process_response(self, request: Any, response: Any) -> Any:
        t = time.process_time()
        try:
            return super().process_response(request, response)
        finally:
            _totals["bookkeeping"] += time.process_time() - t


def crawl(box: Any, spider: str, args: dict[str, Any]) -> dict[str, Any]:
    from crawling import crawl_env

    with tempfile.TemporaryDirectory() as out:
        env = crawl_env(box, Path(out))
        env[OUT_ENV] = str(Path(out) / "bench.json")
        env["PYTHONPATH"] = str(ROOT)
        from tweetform import settings as project

        spider_mws = {**project.SPIDER_MIDDLEWARES, "tweetform.cost.middleware.CostMiddleware": None,
                      "bench.cost_bench.TimedCostMiddleware": project.SPIDER_MIDDLEWARES["tweetform.cost.middleware.CostMiddleware"]}
        downloader_mws = {**project.DOWNLOADER_MIDDLEWARES, "tweetform.cost.budget.BudgetMiddleware": None,
                          "bench.cost_bench.TimedBudgetMiddleware": project.DOWNLOADER_MIDDLEWARES["tweetform.cost.budget.BudgetMiddleware"]}
        settings = {"SPIDER_MIDDLEWARES": spider_mws, "DOWNLOADER_MIDDLEWARES": downloader_mws}
        cmd = [sys.executable, "-m", "scrapy", "crawl", spider, "-L", "WARNING", "-s", "TWEETFORM_PROGRESS=off"]
        for name, value in settings.items():
            cmd += ["-s", f"{name}={json.dumps(value)}"]
        for name, value in {**args, "budget": 100_000}.items():
            cmd += ["-a", f"{name}={value}"]
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise SystemExit(f"{spider} failed: {done.stderr[-3000:]}")
        return json.loads((Path(out) / "bench.json").read_text())


def main() -> None:
    from tweetform.testing.servers import SandboxProcess

    limits = [a for e in ("/2/users/:id/followers", "/2/users/:id/following", "/2/users/:id/tweets")
              for a in ("--limit", f"{e}=1000000")]
    box = SandboxProcess("--users", "20000", "--seed", "7", *limits, cwd=ROOT)
    try:
        ex = box.get("/_sandbox/examples")
        runs = [
            ("followers users", "followers", {"user_id": ",".join(map(str, ex["many_followers"][:3])), "data_type": "users"}),
            ("friends ids d2", "friends", {"user_id": ",".join(map(str, ex["ordinary"][:3])), "depth": 2}),
            ("timeline", "timeline", {"user_id": ",".join(map(str, ex["long_timeline"][:3]))}),
        ]
        print("| crawl (v2, budget on) | pages | $ | crawl CPU ms/page | bookkeeping CPU ms/page | share |")
        print("|---|---:|---:|---:|---:|---:|")
        for label, spider, args in runs:
            crawl(box, spider, args)  # warm-up (the sandbox's caches), then the measured run
            r = crawl(box, spider, args)
            pages = max(1, r["pages"])
            page_ms, book_ms = r["crawl"] * 1000 / pages, r["bookkeeping"] * 1000 / pages
            print(f"| {label} | {r['pages']:,} | {r['usd']:,.2f} | {page_ms:.2f} | {book_ms:.3f} | {100 * book_ms / page_ms:.1f} % |")
    finally:
        box.stop()


if __name__ == "__main__":
    main()
