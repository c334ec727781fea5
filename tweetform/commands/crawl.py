"""``scrapy crawl``: Scrapy's own command, with tweetform's arguments checked first.

A bad argument stops here with one line on stderr (exit status 2): nothing is
fetched and nothing is written.
"""

from __future__ import annotations

import argparse
import sys

from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.exceptions import UsageError

from tweetform.credentials import CredentialError, load_credentials
from tweetform.spiders.arguments import ArgumentError


class Command(ScrapyCrawlCommand):
    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 1:
            raise UsageError("give exactly one spider name")
        assert self.crawler_process is not None and self.settings is not None
        try:
            spidercls = self.crawler_process.spider_loader.load(args[0])
        except KeyError:
            names = ", ".join(sorted(self.crawler_process.spider_loader.list()))
            return self.fail(f"unknown spider {args[0]!r}; the spiders are: {names}")
        parse = getattr(spidercls, "parse_arguments", None)
        if parse is not None:
            try:
                job = parse(opts.spargs, str(self.settings.get("TWEETFORM_API_VERSION")))
                if not load_credentials(self.settings):
                    return self.fail("no API credentials configured: set TWEETFORM_CREDENTIALS or TWEETFORM_CREDENTIALS_FILE "
                                     "(see settings_local.py.example), or run `make demo` to try the sandbox")
            except (ArgumentError, CredentialError) as exc:
                return self.fail(str(exc))
            opts.spargs = {**opts.spargs, "_job": job}
        super().run(args, opts)

    def fail(self, message: str) -> None:
        print(f"tweetform: {message}", file=sys.stderr)
        self.exitcode = 2
