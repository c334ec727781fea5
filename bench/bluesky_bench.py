"""CPU per page of a Bluesky follows crawl beside the X one (issue 19).

Real ``scrapy crawl friends`` processes against one local sandbox (3,000 users, seed 7, 1-second
windows so X's quota never waits long): the same seed user (the demo Bluesky account's), depth 3, once with ``api=2``
(``/2/users/:id/following``, up to 1,000 accounts a page) and once with ``api=bluesky``
(``app.bsky.graph.getFollows``, 100 profiles a page; X's lists hold protected accounts the
AppView drops as deactivated, so the users expanded differ a little), alternated in rounds so machine load falls
on both alike. A small extension times ``time.process_time()`` from spider_opened to
spider_closed; it is divided by the pages written and by the users expanded. Each figure is the
median of the rounds.

Usage (from the repository root)::

    .venv/bin/python bench/bluesky_bench.py [--rounds 3] [--depth 3]   # prints a markdown table
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

OUT_ENV = "BLUESKY_BENCH_OUT"


class CpuClock:
    """Extension: CPU seconds of the crawl and its stats, into ``$BLUESKY_BENCH_OUT``."""

    def __init__(self, crawler: Any) -> None:
        import time

        from scrapy import signals

        self.crawler, self.clock, self.started = crawler, time.process_time, 0.0
        crawler.signals.connect(self.opened, signal=signals.spider_opened)
        crawler.signals.connect(self.closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Any) -> "CpuClock":
        return cls(crawler)

    def opened(self) -> None:
        self.started = self.clock()

    def closed(self) -> None:
        stats = self.crawler.stats
        Path(os.environ[OUT_ENV]).write_text(json.dumps({
            "cpu": self.clock() - self.started,
            "pages": stats.get_value("tweetform/pages/written", 0),
            "users": stats.get_value("tweetform/users/expanded", 0)}))


def crawl(box: Any, api: str, seed: str, out: Path, depth: int) -> dict[str, float]:
    from crawling import crawl_env, demo_credentials

    env = crawl_env(box, out / "data", demo_credentials("demo-user-1"))
    env.update({OUT_ENV: str(out / "cpu.json"), "TWEETFORM_BLUESKY_APPVIEW": box.base, "TWEETFORM_BLUESKY_PDS": box.base,
                "PYTHONPATH": str(ROOT)})
    cmd = [sys.executable, "-m", "scrapy", "crawl", "friends", "-L", "WARNING", "-a", f"api={api}", "-a", f"user_id={seed}",
           "-a", f"depth={depth}", "-s", "EXTENSIONS=" + json.dumps({"bench.bluesky_bench.CpuClock": 0})]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return json.loads((out / "cpu.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--depth", type=int, default=3)
    args = parser.parse_args()
    from tweetform.testing.servers import SandboxProcess

    box = SandboxProcess("--users", "3000", "--seed", "7", "--window", "1")
    try:
        account = box.get("/_sandbox/truth/bsky/accounts")[0]
        uid = box.get(f"/_sandbox/truth/bsky/profile/{account['did']}")["uid"]
        seeds = {"2": str(uid), "bluesky": account["did"]}
        runs: dict[str, list[dict[str, float]]] = {"2": [], "bluesky": []}
        with tempfile.TemporaryDirectory() as tmp:
            for api in ("2", "bluesky"):  # warm the sandbox's page cache (answers are cached per page)
                crawl(box, api, seeds[api], Path(tmp) / f"warm-{api}", args.depth)
            for n in range(args.rounds):
                for api in ("2", "bluesky"):
                    runs[api].append(crawl(box, api, seeds[api], Path(tmp) / f"{api}-{n}", args.depth))
    finally:
        box.stop()
    print("| api | pages | users expanded | CPU ms/page | CPU ms/user |")
    print("|---|---:|---:|---:|---:|")
    per_page = {}
    for api, rs in runs.items():
        per_page[api] = statistics.median(r["cpu"] / r["pages"] * 1000 for r in rs)
        per_user = statistics.median(r["cpu"] / r["users"] * 1000 for r in rs)
        print(f"| {'X v2 following' if api == '2' else 'Bluesky getFollows'} | {rs[0]['pages']:.0f} | {rs[0]['users']:.0f} "
              f"| {per_page[api]:.2f} | {per_user:.2f} |")
    print(f"\nBluesky / X CPU per page: {per_page['bluesky'] / per_page['2']:.2f}x")


if __name__ == "__main__":
    main()
