"""``scrapy admin ACTION …``: tweetf0rm's node commands, and job control, through Redis.

  list-nodes                 LIST_NODES: workers, alive or dead
  node-qsizes                NODE_QSIZES: queued / in-flight requests per spider
  clear-queue SPIDER         CLEAR_NODE_QUEUES: drop a spider's queued requests (each a page of its job
                             failed for good: the job ends)
  stop-node WORKER|HOST|all  SHUTDOWN_NODE: ask workers to hand back their work and exit
  pause JOB / resume JOB / cancel JOB
  budget JOB +USD            raise a job's budget; a job stopped at its budget continues
  purge JOB                  every key of the job goes now (not only after TWEETFORM_JOB_STATE_TTL)
  migrate                    fold an older tweetform's sets (before issue 15) into today's compact ones, now
                             (workers, crawls and collectors also do it for each job they meet)
"""

from __future__ import annotations

import argparse
import json
import sys

from scrapy.commands import ScrapyCommand
from scrapy.spiderloader import get_spider_loader

from tweetform.config import uses_redis
from tweetform.commands.errors import one_line_errors, with_redis_errors

ACTIONS = ("list-nodes", "node-qsizes", "clear-queue", "stop-node", "pause", "resume", "cancel", "budget", "purge", "migrate")


class Command(ScrapyCommand):
    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        one_line_errors(parser)  # a bad option value: one line, exit 2

    requires_project = True
    requires_crawler_process = False
    default_settings = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "list-nodes | node-qsizes | clear-queue SPIDER | stop-node WORKER|HOST|all | pause JOB | resume JOB | cancel JOB | budget JOB +USD | purge JOB | migrate"

    def short_desc(self) -> str:
        return "Administer distributed crawling (nodes, queues, jobs)"

    @with_redis_errors
    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        from tweetform.state.redis import connection, control, keys, migrate  # here: every scrapy start imports this module

        if not args or args[0] not in ACTIONS:
            return self.fail(f"give an action: {', '.join(ACTIONS)}")
        if not uses_redis(self.settings):
            return self.fail("REDIS_URL is not set")
        server = connection.from_settings(self.settings)
        action, rest = args[0], args[1:]
        if action == "list-nodes":
            for n in control.nodes(server):
                print(f"{'alive' if n['alive'] else 'dead'}\t{n['worker']}\t{n.get('spider', '')}")
        elif action == "node-qsizes":
            print(json.dumps({q["spider"]: {"queued": q["queued"], "in_flight": q["in_flight"]} for q in control.queues(server, get_spider_loader(self.settings).list())}))
        elif action == "budget":
            from tweetform.cost import default_budget_usd
            from tweetform.cost.redis_budget import admin_budget

            if len(rest) != 2:
                return self.fail("budget needs a job and an amount: budget JOB +USD")
            try:
                print(admin_budget(server, rest[0], rest[1], default_budget_usd(self.settings)))
            except ValueError as exc:  # BudgetArgumentError, or a bad TWEETFORM_BUDGET_USD
                return self.fail(str(exc))
        elif action == "migrate":
            from tweetform.cost.ledger import SharedCostLedger

            if rest:
                return self.fail("migrate takes no argument")
            jobs, done = migrate.migrate_all(server, SharedCostLedger.TTL)
            print(f"{jobs} job(s) looked at; folded into compact sets: {done.fingerprints} request fingerprint(s), "
                  f"{done.pages} written page id(s), {done.billed} billed id(s)")
        elif len(rest) != 1:
            return self.fail(f"{action} needs one argument")
        elif action == "clear-queue":
            if rest[0] not in get_spider_loader(self.settings).list():
                return self.fail(f"unknown spider {rest[0]!r}")
            print(f"removed {control.clear_queue(server, rest[0])} queued requests of {rest[0]}")
        elif action == "stop-node":
            targets = control.stop_node(server, rest[0])
            if not targets:
                return self.fail(f"no worker matches {rest[0]!r}")
            print("asked to stop: " + ", ".join(targets))
        elif action == "purge":
            if not server.exists(keys.job(rest[0])):
                return self.fail(f"no job {rest[0]!r} in Redis")
            print(f"job {rest[0]} purged ({control.purge_job(server, rest[0])} keys)")
        else:
            state = {"pause": "paused", "resume": "running", "cancel": "cancelled"}[action]
            if not control.set_job_state(server, rest[0], state):
                return self.fail(f"no job {rest[0]!r} in Redis")
            print(f"job {rest[0]} {state}")

    def fail(self, message: str) -> None:
        print(f"tweetform: {message}", file=sys.stderr)
        self.exitcode = 2
