"""``scrapy archive [--older-than MINUTES] [--bucket NAME …] [--every MINUTES]``.

Packs the bucket files nobody has written for ``--older-than`` minutes
(default 60) and no running crawl holds open into ``<bucket>/<bucket>-<UTC time>.tar.gz`` and removes them;
``--every N`` does it again every N minutes until stopped, as tweetf0rm's
hourly archiver did. Exports and tools read archives like plain files.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from scrapy.commands import ScrapyCommand

from tweetform.commands.errors import number, one_line_errors


def size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False
    default_settings = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "[--older-than MINUTES] [--bucket NAME …] [--every MINUTES]"

    def short_desc(self) -> str:
        return "Pack bucket files idle for N minutes into tar.gz archives"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        one_line_errors(parser)  # a bad option value: one line, exit 2
        parser.add_argument("--older-than", type=number(float, 0), default=60.0, metavar="MINUTES",
                            help="archive files not written for this long (default 60)")
        parser.add_argument("--bucket", action="append", default=[], metavar="NAME", help="only these buckets (repeatable)")
        parser.add_argument("--every", type=number(float, 0), default=0.0, metavar="MINUTES", help="repeat every N minutes until stopped")
        parser.add_argument("--data", metavar="DIR", help="the output directory (default TWEETFORM_OUTPUT_DIR)")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        from tweetform.export.archive import buckets_in  # here: every scrapy start imports this module
        from tweetform.spiders.arguments import BUCKET

        root = Path(opts.data or self.settings.get("TWEETFORM_OUTPUT_DIR") or "data")
        bad = [b for b in opts.bucket if not BUCKET.match(b)]
        if bad:  # --older-than and --every are checked by their option types (commands.errors.number)
            print(f"tweetform: bucket {bad[0]!r} must be a plain word of letters, digits, _ or -", file=sys.stderr)
            self.exitcode = 2
            return
        stop = threading.Event()  # set by SIGTERM/SIGINT; waiting on it ends the pause at once

        def on_signal(signum: int, frame: object) -> None:
            stop.set()

        if opts.every:
            signal.signal(signal.SIGTERM, on_signal)
            signal.signal(signal.SIGINT, on_signal)
        while True:
            self.once(root, opts.bucket or buckets_in(root), opts.older_than * 60)
            if not opts.every:
                return
            if stop.wait(opts.every * 60):
                return

    def once(self, root: Path, buckets: list[str], idle: float) -> None:
        from tweetform.export.archive import archive_bucket

        packed = 0
        held: list[Path] = []
        for bucket in buckets:
            try:
                result = archive_bucket(root, bucket, idle, held=held)
            except OSError as exc:
                print(f"tweetform: could not archive {bucket}: {exc}", file=sys.stderr)
                self.exitcode = 1
                continue
            if result is None:
                continue
            packed += result.files
            kept = f"; {len(result.kept)} changed meanwhile and kept" if result.kept else ""
            print(f"archived {result.files} file{'' if result.files == 1 else 's'} of {bucket} ({size(result.bytes_in)} → {size(result.bytes_out)}) "
                  f"into {result.archive}{kept}", flush=True)
        if held:
            print(f"left {len(held)} file{'' if len(held) == 1 else 's'} a running crawl holds open (archived once it lets go)", flush=True)
        if not packed and not held:
            print(f"nothing to archive under {root} (no bucket file idle for {idle / 60:g} minutes)", flush=True)
