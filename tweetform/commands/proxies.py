"""``scrapy proxies check``: fetch the API through every configured proxy and say which work.

Prints one row per proxy (password hidden): reachable, latency, HTTP status,
the credential the probe was signed with, and the verdict. Exit status 0 when
every proxy is usable, 1 when some are dead, 2 when the configuration is
unusable (no proxies, a bad proxy address, bad credentials).
"""

from __future__ import annotations

import argparse
import json

from scrapy.commands import ScrapyCommand

from tweetform.commands.errors import fail, number, one_line_errors


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False
    default_settings = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "check [--timeout SECONDS] [--credential ALIAS] [--json]"

    def short_desc(self) -> str:
        return "Verify every configured proxy by fetching the API through it"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        one_line_errors(parser)  # a bad option value: one line, exit 2
        parser.add_argument("--timeout", type=number(float, 0, above=True), default=None, metavar="SECONDS",
                            help="per proxy (default TWEETFORM_PROXY_CHECK_TIMEOUT)")
        parser.add_argument("--credential", default="", metavar="ALIAS",
                            help="sign the probes with this credential (where its pinning allows)")
        parser.add_argument("--json", action="store_true", help="one JSON object per proxy instead of the table")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        if args != ["check"]:
            fail("usage: scrapy proxies check [--timeout SECONDS] [--credential ALIAS] [--json]")
        from tweetform.credentials import CredentialError, load_credentials
        from tweetform.proxies import config
        from tweetform.proxies.check import DEFAULT_PATH, check_proxies, credential_chooser, format_table

        s = self.settings
        try:
            creds = load_credentials(s)
            plan = config.plan(s, creds)
        except (CredentialError, config.ProxyConfigError) as exc:
            fail(str(exc))
        if not plan.proxies:
            fail("no proxies configured: set ROTATING_PROXY_LIST, ROTATING_PROXY_LIST_PATH or TWEETFORM_PROXY_FILE")
        if opts.credential and opts.credential not in {c.alias for c in creds}:
            fail(f"no credential with alias {opts.credential!r}")
        timeout = opts.timeout if opts.timeout is not None else s.getfloat("TWEETFORM_PROXY_CHECK_TIMEOUT", 10.0)
        chooser = credential_chooser(creds, plan.credentials_for, prefer=opts.credential)
        results = check_proxies(plan.proxies, s.get("TWEETFORM_API_BASE"), chooser, timeout=timeout,
                                path=s.get("TWEETFORM_PROXY_CHECK_PATH") or DEFAULT_PATH)
        if opts.json:
            for r in results:
                print(json.dumps(r.as_dict()))
        else:
            print(format_table(results))
        self.exitcode = 0 if all(r.usable for r in results) else 1
