"""``scrapy wait JOB [--timeout SECONDS]``: block until a distributed job ends; exit with how it ended.

A job ends ``done`` (none of its requests queued, in flight or parked),
``cancelled`` or ``budget`` (stopped at its budget). The exit status is the one
README's "Exit status" table gives (:mod:`tweetform.exitcodes`): 0 only for a
job done with no page failed for good.
"""

from __future__ import annotations

import argparse
import sys
import time

from scrapy.commands import ScrapyCommand

from tweetform.config import uses_redis
from tweetform import exitcodes
from tweetform.commands.errors import fail, number, one_line_errors, with_redis_errors

POLL = 0.5  # seconds between looks at the job's state


def wait_for_job(server: object, job_id: str, timeout: float | None = None) -> int:
    """Block until the job ends (or the timeout passes: INTERRUPTED); its exit status. Redis unreachable at the first
    look raises (exit status unreachable); once the job was read, Redis going away (a restart) is waited through, as
    the workers do: said in one line, and again when it is back (the client makes no retry of its own)."""
    import redis

    from tweetform.state.redis import control  # here: every scrapy start imports this module
    from tweetform.state.redis.connection import redis_away
    from tweetform.state.redis.jobs import job_last_complete_level

    deadline = None if timeout is None else time.monotonic() + timeout
    read, away_since = False, None
    while True:
        try:
            ended = control.job_ended(server, job_id)
            # network jobs: how deep the data is complete
            level = job_last_complete_level(server, job_id) if ended is not None and ended[0] != "gone" else None
        except redis.RedisError as exc:
            if not read or not redis_away(exc):
                raise
            if away_since is None:
                away_since = time.monotonic()
                print(f"Redis is unreachable ({type(exc).__name__}): still waiting for job {job_id}", file=sys.stderr)
        else:
            read = True
            if away_since is not None:
                print(f"Redis is back after {time.monotonic() - away_since:.0f} s", file=sys.stderr)
                away_since = None
            if ended is not None:
                state, failed = ended
                if state == "gone":
                    fail(f"no job {job_id!r} in Redis")
                print(f"job {job_id} {state}" + (f", {failed} page(s) failed for good" if failed else "")
                      + (f"; levels complete: 1..{level}" if level else ""), file=sys.stderr)
                return exitcodes.for_job_state(state, failed)
        if deadline is not None and time.monotonic() >= deadline:
            print(f"job {job_id} still running after {timeout:g} s", file=sys.stderr)
            return exitcodes.INTERRUPTED
        time.sleep(POLL)


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False
    default_settings = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "JOB [--timeout SECONDS]"

    def short_desc(self) -> str:
        return "Wait until a distributed job ends; exit with how it ended"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        one_line_errors(parser)  # a bad option value: one line, exit 2
        parser.add_argument("--timeout", type=number(float, 0), default=None, help="give up after this many seconds (exit status: interrupted)")

    @with_redis_errors
    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        if len(args) != 1:
            fail("give one job id")
        if not uses_redis(self.settings):
            fail("REDIS_URL is not set: jobs are in the Redis that the workers share")
        from tweetform.state.redis import connection

        self.exitcode = wait_for_job(connection.from_settings(self.settings), args[0], opts.timeout)
