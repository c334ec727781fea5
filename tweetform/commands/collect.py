"""``scrapy collect [--data DIR] [--exit-when-idle]``: write every job's pages in one place.

Run it where the dataset should live. Workers started with
``TWEETFORM_COLLECT=true`` hand their pages to Redis instead of writing them;
this command reads them and writes ``<DIR>/<bucket>/<key>.jsonl`` exactly as a
local crawl would (README, "One dataset from many hosts"). It runs until
stopped (SIGINT/SIGTERM: the batch in hand is written and acknowledged first),
or with ``--exit-when-idle`` until no page waits and no worker is alive.
"""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

from scrapy.commands import ScrapyCommand
from scrapy.utils.log import configure_logging

from tweetform.config import uses_redis
from tweetform import exitcodes
from tweetform.commands.errors import fail, one_line_errors, redis_errors, require_redis


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False

    def syntax(self) -> str:
        return "[--data DIR] [--exit-when-idle]"

    def short_desc(self) -> str:
        return "Write the pages of workers in collect mode into one output directory"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        one_line_errors(parser)  # a bad option value: one line, exit 2
        parser.add_argument("--data", metavar="DIR", help="the output directory (default TWEETFORM_OUTPUT_DIR)")
        parser.add_argument("--exit-when-idle", action="store_true",
                            help="exit once no page waits in Redis and no worker is alive")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        from tweetform.collect.collector import Collector, LockLost
        from tweetform.collect.lock import LockHeld
        from tweetform.state.redis.connection import from_settings

        if args:
            fail(f"collect takes no arguments (got {' '.join(args)!r})")
        if not uses_redis(self.settings):
            fail("REDIS_URL is not set: the collector reads the workers' pages from Redis")
        root = Path(opts.data or self.settings.get("TWEETFORM_OUTPUT_DIR") or "data")
        if root.exists() and not root.is_dir():
            fail(f"output directory {str(root)!r} is not a directory")
        require_redis(self.settings)
        configure_logging(self.settings)
        with redis_errors(self.settings):
            collector = Collector(self.settings, from_settings(self.settings), root, exit_when_idle=opts.exit_when_idle)

            def on_signal(signum: int, frame: object) -> None:
                collector.stop.set()

            signal.signal(signal.SIGTERM, on_signal)
            signal.signal(signal.SIGINT, on_signal)
            try:
                collector.run()
            except (LockHeld, LockLost) as exc:
                fail(str(exc), exitcodes.ERROR)
