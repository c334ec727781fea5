"""``scrapy sandbox``: start the local Twitter/X API emulator (see tweetform.sandbox)."""

from __future__ import annotations

import argparse
import sys

from scrapy.commands import ScrapyCommand

from tweetform.sandbox.config import add_arguments, from_args
from tweetform.commands.errors import one_line_errors


class Command(ScrapyCommand):
    requires_project = False
    requires_crawler_process = False
    default_settings = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "[--host 127.0.0.1] [--port 0] [options]"

    def short_desc(self) -> str:
        return "Run the local Twitter/X API emulator and print its URL"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        one_line_errors(parser)  # a bad option value: one line, exit 2
        add_arguments(parser)

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        from tweetform.sandbox.server import run

        try:
            config = from_args(opts)
        except (OSError, ValueError) as exc:
            print(f"sandbox: bad configuration: {exc}", file=sys.stderr)
            self.exitcode = 2
            return
        try:
            run(config)
        except OSError as exc:  # the port is taken, or the address is not this host's
            print(f"sandbox: cannot listen on {config.host}:{config.port} ({exc.strerror or exc})", file=sys.stderr)
            self.exitcode = 2
