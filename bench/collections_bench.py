"""CPU per page of the collection spiders that return tweets, against ``search`` (issue 17; target:
within 10 %).

Real ``scrapy crawl`` processes against one local sandbox (API v2, 3,000 users, seed 7, limits
raised so no crawl waits), run side by side in rounds (search, then each collection spider, then
again), so machine load falls on all alike. A small extension times ``time.process_time()`` from
spider_opened to spider_closed; it is divided by the pages written (and by the tweets, since the
collection endpoints' pages are often shorter than search's 100). Each figure is the median of the
rounds. A crawl's fixed CPU (start, job set-up, the first quota probes) weighs on a crawl of
few pages, so each collection crawl is compared with a search crawl of as many pages (``max_tweets``
= 100 × its pages) run right after it: the ratio is the median of the pairs' CPU per page.

Usage (from the repository root)::

    .venv/bin/python bench/collections_bench.py [--rounds 3]   # prints a markdown table
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

OUT_ENV = "COLLECTIONS_BENCH_OUT"
SEED_USERS = (12, 1004302403, 826270926390689794)


class CpuClock:
    """Extension: CPU seconds of the crawl, pages and tweets written, into ``$COLLECTIONS_BENCH_OUT``."""

    def __init__(self, crawler: Any) -> None:
        from scrapy import signals

        self.crawler = crawler
        self.started = 0.0
        self.tweets = 0
        crawler.signals.connect(self.opened, signal=signals.spider_opened)
        crawler.signals.connect(self.item, signal=signals.item_scraped)
        crawler.signals.connect(self.closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Any) -> "CpuClock":
        return cls(crawler)

    def opened(self) -> None:
        self.started = time.process_time()

    def item(self, item: Any) -> None:
        data = item.get("data") if isinstance(item, dict) else None
        self.tweets += len(data) if isinstance(data, list) else 0

    def closed(self) -> None:
        cpu = time.process_time() - self.started
        pages = int(self.crawler.stats.get_value("tweetform/pages/written", 0))
        Path(os.environ[OUT_ENV]).write_text(json.dumps({"cpu": cpu, "pages": pages, "tweets": self.tweets}))


def crawl(box: Any, spider: str, args: dict[str, Any]) -> dict[str, Any]:
    from crawling import crawl_env

    with tempfile.TemporaryDirectory() as out:
        env = crawl_env(box, Path(out))
        env[OUT_ENV] = str(Path(out) / "bench.json")
        env["PYTHONPATH"] = str(ROOT)
        cmd = [sys.executable, "-m", "scrapy", "crawl", spider, "-L", "WARNING", "-s", "TWEETFORM_PROGRESS=off",
               "-s", "EXTENSIONS=" + json.dumps({"bench.collections_bench.CpuClock": 0})]
        for name, value in args.items():
            cmd += ["-a", f"{name}={value}"]
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise SystemExit(f"{spider} failed: {done.stderr[-3000:]}")
        return json.loads((Path(out) / "bench.json").read_text())


def main() -> None:
    from tweetform.testing.servers import SandboxProcess

    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    opts = parser.parse_args()
    endpoints = ("/2/tweets/search/recent", "/2/tweets/:id/quote_tweets", "/2/users/:id/liked_tweets", "/2/users/:id/mentions",
                 "/2/lists/:id/tweets", "/2/tweets")
    limits = [a for e in endpoints for a in ("--limit", f"{e}=1000000,1000000")]
    box = SandboxProcess("--users", "3000", "--seed", "7", *limits, cwd=ROOT)
    try:
        engaged = [t for u in SEED_USERS for t in box.get(f"/_sandbox/truth/engaged/{u}")["ids"]]
        likers = box.get(f"/_sandbox/truth/likers/{engaged[0]}")["ids"][:40]
        lists = box.get("/_sandbox/truth/owned_lists/12")["ids"]
        ids = lambda xs: ",".join(map(str, xs))  # noqa: E731
        runs = [
            ("quotes of 18 tweets", "quotes", {"tweet_id": ids(engaged)}),
            ("liked_tweets of 40 users", "liked_tweets", {"user_id": ids(likers)}),
            ("mentions of 3 users", "mentions", {"user_id": ids(SEED_USERS)}),
            ("lists relation=tweets, 3 lists", "lists", {"list_id": ids(lists), "relation": "tweets"}),
            ("conversation of 18 threads", "conversation", {"conversation_id": ids(engaged)}),
        ]
        results: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {label: [] for label, *_ in runs}
        for label, spider, args in runs:
            crawl(box, spider, args)  # warm-up: the sandbox's caches
        crawl(box, "search", {"query": "data"})
        for _ in range(opts.rounds):
            for label, spider, args in runs:
                ours = crawl(box, spider, args)
                # search fetching as many pages (100 tweets each), right after: the same fixed costs, the same load
                matched = crawl(box, "search", {"query": "data", "max_tweets": 100 * ours["pages"]})
                results[label].append((ours, matched))
        print(f"| crawl (v2, median of {opts.rounds} rounds) | pages | tweets/page | CPU ms/page | "
              "search, as many pages: CPU ms/page | ratio (target ≤ 1.10) |")
        print("|---|---:|---:|---:|---:|---:|")
        for label, rs in results.items():
            ours, matched = rs[-1]
            mine = statistics.median(o["cpu"] * 1000 / max(1, o["pages"]) for o, _ in rs)
            theirs = statistics.median(m["cpu"] * 1000 / max(1, m["pages"]) for _, m in rs)
            ratio = statistics.median((o["cpu"] / max(1, o["pages"])) / (m["cpu"] / max(1, m["pages"])) for o, m in rs)
            print(f"| {label} | {ours['pages']} | {ours['tweets'] / max(1, ours['pages']):.0f} | {mine:.2f} | "
                  f"{theirs:.2f} ({matched['pages']} pages) | {ratio:.2f} |")
    finally:
        box.stop()


if __name__ == "__main__":
    main()
