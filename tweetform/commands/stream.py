"""``scrapy stream rules add|list|delete``: the filtered stream's rules (one app's; README "Streaming").

    scrapy stream rules add "QUERY" [--tag T] [--dry-run] [--credential ALIAS]
    scrapy stream rules list [--credential ALIAS]
    scrapy stream rules delete ID [ID …] | --all [--credential ALIAS]

The rules belong to the app of the first app-only credential, or of
``--credential``'s (the stream, ``scrapy crawl stream``, uses the same one).
A rule the API refuses is one line on stderr, with the API's reason, and exit
status 2; nothing else changes.
"""

from __future__ import annotations

import argparse
import sys

from scrapy.commands import ScrapyCommand

from tweetform import exitcodes
from tweetform.commands.errors import one_line_errors

USAGE = 'rules add "QUERY" [--tag T] [--dry-run] | rules list | rules delete ID [ID …] | rules delete --all'


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False
    default_settings = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return USAGE + " [--credential ALIAS]"

    def short_desc(self) -> str:
        return "Add, list and delete the filtered stream's rules (scrapy crawl stream collects what they match)"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        one_line_errors(parser)  # a bad option value: one line, exit 2
        parser.add_argument("--tag", default=None, help="rules add: a tag the stream reports with each match")
        parser.add_argument("--dry-run", action="store_true", help="rules add: only ask the API whether the rule is valid")
        parser.add_argument("--all", action="store_true", help="rules delete: every rule of the app")
        parser.add_argument("--credential", default=None, metavar="ALIAS", help="the app-only credential whose app's rules these are")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        lines, code = self.rules(args, opts)
        for line in lines:
            print(line)
        self.exitcode = code

    def rules(self, args: list[str], opts: argparse.Namespace) -> tuple[list[str], int]:
        from tweetform.credentials import CredentialError, load_credentials  # here: every scrapy start imports this module
        from tweetform.stream.app import Rejected, StreamSetupError, Unreachable, app_credential
        from tweetform.stream.rules import RulesClient, RulesError

        if len(args) < 2 or args[0] != "rules" or args[1] not in ("add", "list", "delete"):
            return self.fail([f"usage: scrapy stream {USAGE}"])
        action, rest = args[1], args[2:]
        if action == "add" and len(rest) != 1:
            return self.fail(['rules add takes one rule, quoted: scrapy stream rules add "QUERY" [--tag T]'])
        if action == "list" and rest:
            return self.fail(["rules list takes no arguments"])
        if action == "delete" and bool(rest) == bool(opts.all):
            return self.fail(["rules delete takes rule ids (see rules list) or --all, not both"])
        if action == "delete" and not all(r.isascii() and r.isdigit() for r in rest):
            return self.fail([f"rule ids are numbers (see rules list), not {next(r for r in rest if not (r.isascii() and r.isdigit()))!r}"])
        try:
            cred = app_credential(load_credentials(self.settings), opts.credential)
            client = RulesClient(str(self.settings.get("TWEETFORM_API_BASE")), cred)
            if action == "list":
                rules = client.list()
                return [f"{r['id']}  {r['value']}" + (f"  (tag: {r['tag']})" if r.get("tag") else "") for r in rules] or \
                       [f"no rules (app of credential {cred.alias})"], exitcodes.DONE
            if action == "add":
                rule = client.add(rest[0], opts.tag, opts.dry_run)
                if opts.dry_run:
                    return [f"valid (dry run, not added): {rule['value']}"], exitcodes.DONE
                return [f"added {rule['id']}  {rule['value']}" + (f"  (tag: {rule['tag']})" if rule.get("tag") else "")], exitcodes.DONE
            ids = rest or [r["id"] for r in client.list()]
            deleted = client.delete(ids) if ids else 0
            return [f"deleted {deleted} rule(s)"], exitcodes.DONE
        except RulesError as exc:
            return self.fail(exc.lines)
        except Unreachable as exc:
            return self.fail([str(exc)], exitcodes.UNREACHABLE)
        except Rejected as exc:
            return self.fail([str(exc)], exitcodes.NO_CREDENTIALS)
        except (StreamSetupError, CredentialError) as exc:
            return self.fail([str(exc)])

    @staticmethod
    def fail(lines: list[str], code: int = exitcodes.BAD_INPUT) -> tuple[list[str], int]:
        for line in lines:
            print(f"tweetform: {line}", file=sys.stderr)
        return [], code
