"""How fast ``scrapy crawl stream`` writes what the filtered stream delivers (issue 18; target: the API's
250 posts/s per connection, with CPU to spare), side by side with ``search`` fetching as many tweets.

One local sandbox (3,000 users, seed 7, ``--evolve-every 3600``: about 1,000 new posts an hour of
logical time). Each round puts the clock at the world's creation, adds a rule matching nearly every
post, starts a real ``scrapy crawl stream -a max_tweets=N`` (N: the sandbox's truth for the next two
hours), moves the clock two hours at once — the sandbox then sends the ~2,000 posts as one burst — and
times the crawl from inside: CPU seconds from spider_opened to spider_closed, and the wall time from
its first post to its last (the burst rate). Right after, ``scrapy crawl search -a max_tweets=N`` is
timed the same way (100 tweets a page). Figures are medians of the rounds.

Usage (from the repository root)::

    .venv/bin/python bench/stream_bench.py [--rounds 3]   # prints a markdown table
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

OUT_ENV = "STREAM_BENCH_OUT"
RULE = "lang:en OR lang:es OR lang:fr OR lang:und OR lang:ja OR lang:de OR lang:pt"


class StreamClock:
    """Extension: CPU seconds of the crawl, items written, first and last item times, into ``$STREAM_BENCH_OUT``."""

    def __init__(self, crawler: Any) -> None:
        from scrapy import signals

        self.crawler = crawler
        self.started = 0.0
        self.first = self.last = 0.0
        self.tweets = 0
        crawler.signals.connect(self.opened, signal=signals.spider_opened)
        crawler.signals.connect(self.item, signal=signals.item_scraped)
        crawler.signals.connect(self.closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Any) -> "StreamClock":
        return cls(crawler)

    def opened(self) -> None:
        self.started = time.process_time()

    def item(self, item: Any) -> None:
        now = time.monotonic()
        self.first = self.first or now
        self.last = now
        data = item.get("data") if isinstance(item, dict) else None
        self.tweets += len(data) if isinstance(data, list) else 1 if isinstance(data, dict) else 0

    def closed(self) -> None:
        cpu = time.process_time() - self.started
        pages = int(self.crawler.stats.get_value("tweetform/pages/written", 0))
        Path(os.environ[OUT_ENV]).write_text(json.dumps(
            {"cpu": cpu, "pages": pages, "tweets": self.tweets, "seconds": self.last - self.first}))


def crawl(box: Any, spider: str, args: dict[str, Any], while_running: Any = None) -> dict[str, Any]:
    from crawling import crawl_env

    with tempfile.TemporaryDirectory() as out:
        env = crawl_env(box, Path(out))
        env[OUT_ENV] = str(Path(out) / "bench.json")
        env["PYTHONPATH"] = str(ROOT)
        cmd = [sys.executable, "-m", "scrapy", "crawl", spider, "-L", "WARNING", "-s", "TWEETFORM_PROGRESS=off",
               "-s", "EXTENSIONS=" + json.dumps({"bench.stream_bench.StreamClock": 0})]
        for name, value in args.items():
            cmd += ["-a", f"{name}={value}"]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if while_running is not None:
            while_running()
        _, err = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise SystemExit(f"{spider} failed: {err[-3000:]}")
        return json.loads((Path(out) / "bench.json").read_text())


def stream_round(box: Any) -> tuple[dict[str, Any], int]:
    import requests

    from crawling import demo_credentials

    box.reset()
    started = box.get("/_sandbox/stream")["started"]
    clock = box.get("/_sandbox/clock")
    box.post("/_sandbox/clock", {"offset": clock["offset"] - (clock["now"] - started) + 1.0})
    bearer = {"Authorization": f"Bearer {demo_credentials('demo-app-1')[0]['bearer_token']}"}
    requests.post(box.url("/2/tweets/search/stream/rules"), json={"add": [{"value": RULE}]}, headers=bearer, timeout=30)
    expected = len(box.get(f"/_sandbox/truth/stream?app=demo-app-1&since={started + 1}&until={started + 7201}")["ids"])

    def burst() -> None:
        deadline = time.monotonic() + 120
        while not box.get("/_sandbox/stream")["connections"] and time.monotonic() < deadline:
            time.sleep(0.05)
        box.post("/_sandbox/clock", {"advance": 7200})

    return crawl(box, "stream", {"max_tweets": expected, "duration": 300}, burst), expected


def main() -> None:
    from tweetform.testing.servers import SandboxProcess

    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    opts = parser.parse_args()
    limits = [a for e in ("/2/tweets/search/recent",) for a in ("--limit", f"{e}=1000000,1000000")]
    box = SandboxProcess("--users", "3000", "--seed", "7", "--evolve-every", "3600", *limits, cwd=ROOT)
    try:
        stream_round(box)  # warm-up: the sandbox's indexes
        rows = []
        for _ in range(opts.rounds):
            ours, expected = stream_round(box)
            theirs = crawl(box, "search", {"query": "data", "max_tweets": expected})
            rows.append((ours, theirs, expected))
        cpu_post = statistics.median(o["cpu"] * 1000 / max(1, o["tweets"]) for o, _, _ in rows)
        rate = statistics.median(o["tweets"] / max(1e-9, o["seconds"]) for o, _, _ in rows)
        cpu_search = statistics.median(s["cpu"] * 1000 / max(1, s["tweets"]) for _, s, _ in rows)
        print(f"| (median of {opts.rounds} rounds) | posts | stream CPU ms/post | burst posts/s (target ≥ 250) | "
              "search, as many tweets: CPU ms/tweet | ratio |")
        print("|---|---:|---:|---:|---:|---:|")
        print(f"| stream vs search | {rows[-1][2]:,} | {cpu_post:.2f} | {rate:,.0f} | {cpu_search:.2f} | "
              f"{cpu_post / cpu_search:.1f}× |")
    finally:
        box.stop()


if __name__ == "__main__":
    main()
