"""``scrapy sandbox``: start the local Twitter/X API emulator (see tweetform.sandbox)."""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from scrapy.commands import ScrapyCommand

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
        from tweetform.sandbox.config import add_arguments  # here: every scrapy start imports this module (its world)

        one_line_errors(parser)  # a bad option value: one line, exit 2
        add_arguments(parser)

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        from tweetform.sandbox.config import from_args
        from tweetform.sandbox.server import run

        try:
            config = from_args(opts)
        except (OSError, ValueError) as exc:
            print(f"sandbox: bad configuration: {exc}", file=sys.stderr)
            self.exitcode = 2
            return
        folder = tempfile.mkdtemp(prefix="tweetform-sandbox-")  # the demo credentials' file, gone when the sandbox stops
        try:
            run(config, then=lambda base: print_shell_lines(base, config.credentials, Path(folder)))
        except OSError as exc:  # the port is taken, or the address is not this host's
            print(f"sandbox: cannot listen on {config.host}:{config.port} ({exc.strerror or exc})", file=sys.stderr)
            self.exitcode = 2
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def print_shell_lines(base: str, credentials: str | None, folder: Path) -> None:
    """The two lines that point a shell at the sandbox: its API base, and its credentials as a file
    (the demo set, written for the purpose; or the file given with --credentials)."""
    if credentials is None:
        from tweetform.sandbox.credentials import demo_credentials_as_settings

        path = folder / "demo-credentials.json"
        path.write_text(json.dumps(demo_credentials_as_settings(), indent=1), encoding="utf-8")
    else:
        path = Path(credentials)
    print(f"export TWEETFORM_API_BASE={shlex.quote(base)}")
    print(f"export TWEETFORM_CREDENTIALS_FILE={shlex.quote(str(path.resolve()))}", flush=True)
