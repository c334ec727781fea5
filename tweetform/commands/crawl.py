"""``scrapy crawl``: Scrapy's own command, with tweetform's arguments checked first.

The check runs in ``process_options``, before Scrapy sets up logging and the
crawler process, so a bad argument stops with exactly one line on stderr (exit
status 2): nothing is fetched and nothing is written. After the crawl, the exit
status comes from its finish_reason and stats (:mod:`tweetform.exitcodes`):
non-zero when every credential was rejected, when pages failed for good, or
when the API never answered.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.exceptions import UsageError
from scrapy.settings import SETTINGS_PRIORITIES
from scrapy.spiderloader import get_spider_loader

from tweetform import exitcodes
from tweetform import settings as project_settings
from tweetform.config import command_line_problem, uses_redis
from tweetform.logs import quiet_scrapy
from tweetform.commands.errors import fail, one_line_errors, require_redis

if TYPE_CHECKING:
    from tweetform.job import JobArgs

# Scrapy imports every command module on every start (COMMANDS_MODULE), whatever the command:
# what only a crawl needs is imported in the methods below (tests/test_startup.py)


class Command(ScrapyCrawlCommand):
    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        one_line_errors(parser)  # a bad option value: one line, exit 2

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        if len(args) != 1:
            return  # Scrapy's own usage error follows
        assert self.settings is not None
        from tweetform.api.endpoints import BLUESKY, ENDPOINTS
        from tweetform.cost import default_budget_usd
        from tweetform.credentials import CredentialError, load_credentials
        from tweetform.job import ArgumentError
        from tweetform.preflight import api_base_problem, output_dir_problem, proxies_problem
        from tweetform.proxies.config import ProxyConfigError
        from tweetform.proxies.config import plan as proxy_plan
        from tweetform.quota.pool import missing_auth
        from tweetform.state.local.resume import resumed_job

        problem = command_line_problem(self.settings, vars(project_settings))
        if problem:
            fail(problem)
        quiet_scrapy(self.settings)  # Scrapy's start-up dumps and stats at DEBUG (tweetform.logs)
        loader = get_spider_loader(self.settings)
        try:
            spidercls = loader.load(args[0])
        except KeyError:
            fail(f"unknown spider {args[0]!r}; the spiders are: {', '.join(sorted(loader.list()))}")
        if uses_redis(self.settings):
            require_redis(self.settings)  # one line, not a traceback per component, when Redis is away
        parse = getattr(spidercls, "parse_arguments", None)
        if parse is None or self._is_worker(opts):
            return  # a worker: its jobs come from Redis
        try:
            job = parse(opts.spargs, str(self.settings.get("TWEETFORM_API_VERSION")))
            in_memory = self.settings.getpriority("JOBDIR") == SETTINGS_PRIORITIES["cmdline"]  # -s JOBDIR= : nothing kept
            if not uses_redis(self.settings) and not self.settings.get("JOBDIR") and not in_memory:
                # every local job keeps its queue and state: a stop of any kind continues with one command
                self.settings.set("JOBDIR", str(implicit_jobdir(self.settings, job.job)), priority="cmdline")
            job = resumed_job(self.settings, job, opts.spargs)  # JOBDIR: the job it holds, or exit 2
            if not uses_redis(self.settings) and self.settings.get("JOBDIR"):
                self.settings.set("TWEETFORM_CONTINUE", continue_command(sys.argv, job.job), priority="cmdline")
            check = getattr(spidercls, "check_settings", None)  # e.g. the stream's app credential
            if check is not None:
                check(opts.spargs, self.settings)
            bluesky = job.api == BLUESKY
            creds = load_credentials(self.settings, "bluesky" if bluesky else "x")
            if not creds and not bluesky:
                fail("no API credentials configured: set TWEETFORM_CREDENTIALS or TWEETFORM_CREDENTIALS_FILE "
                     "(see settings_local.py.example), or run `make demo` to try the sandbox")
            proxies = proxy_plan(self.settings, creds).proxies  # a bad proxy setting stops here too, with one line
            for key in spidercls.endpoints_for(job) if hasattr(spidercls, "endpoints_for") else ():
                if bluesky:  # public methods need no account; a session needs one
                    if ENDPOINTS[key].session and not creds:
                        fail(f"{key} needs a Bluesky account session: add {{\"alias\", \"handle\", \"app_password\"}} "
                             "to TWEETFORM_CREDENTIALS", exitcodes.NO_CREDENTIALS)
                    continue
                missing = missing_auth(ENDPOINTS[key], creds)  # e.g. a bearer token only, for liking_users
                if missing:
                    fail(missing, exitcodes.NO_CREDENTIALS)
            default_budget_usd(self.settings)  # TWEETFORM_BUDGET_USD: an amount or unlimited
        except (ArgumentError, CredentialError, ProxyConfigError, ValueError) as exc:
            fail(str(exc))
        # nothing answering at the configured addresses: say so now, not after every page has failed
        problem = output_dir_problem(str(self.settings.get("TWEETFORM_OUTPUT_DIR") or "data"))
        if problem is None and proxies:  # TWEETFORM_PROXY_CHECK_AT_START checks them better, through to the API
            problem = None if self.settings.getbool("TWEETFORM_PROXY_CHECK_AT_START") else proxies_problem(proxies)
        elif problem is None and job.api == BLUESKY:  # the hosts the job uses, never X's
            problem = api_base_problem(str(self.settings.get("TWEETFORM_BLUESKY_APPVIEW")), setting="TWEETFORM_BLUESKY_APPVIEW")
            if problem is None and any(ENDPOINTS[k].host == "pds" for k in spidercls.endpoints_for(job)):
                problem = api_base_problem(str(self.settings.get("TWEETFORM_BLUESKY_PDS")), setting="TWEETFORM_BLUESKY_PDS")
        elif problem is None:
            problem = api_base_problem(str(self.settings.get("TWEETFORM_API_BASE")))
        if problem:
            fail(problem)
        warn_if_deep(self.settings, job)
        opts.spargs = {**opts.spargs, "_job": job}

    def _is_worker(self, opts: argparse.Namespace) -> bool:
        assert self.settings is not None
        return not {k for k in opts.spargs if k != "_job"} and uses_redis(self.settings)

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        """Scrapy's crawl, with an exit status that tells what happened (README: Exit status)."""
        if len(args) < 1:
            raise UsageError
        if len(args) > 1:
            raise UsageError("running 'scrapy crawl' with more than one spider is not supported")
        assert self.crawler_process is not None
        crawler = self._create_crawler(args[0])
        self.crawler_process.crawl(crawler, **opts.spargs)
        self.crawler_process.start()
        self.exitcode = exitcodes.for_crawlers(
            [crawler], bootstrap_failed=self.crawler_process.bootstrap_failed, worker=self._is_worker(opts))
        stats = crawler.stats.get_stats() if crawler.stats else {}
        job = opts.spargs.get("_job")
        if self.exitcode == exitcodes.DONE and job is not None and uses_redis(self.settings):
            # a shared job: pages other workers failed for good are its failures too (as `scrapy wait` says)
            ended = distributed_job_end(self.settings, job.job)
            if ended is not None and ended[0] != "gone":
                self.exitcode = exitcodes.for_job_state(*ended)
                stats = {**stats, "tweetform/pages/failed": ended[1]}
        if job is not None:
            for line in summary(self.settings, job.job, self.exitcode):
                print(f"tweetform: {line}", file=sys.stderr)
        why = explain(self.exitcode, stats, self.settings)
        if why:
            print(f"tweetform: {why}", file=sys.stderr)


def summary(settings: Any, job_id: str, code: int) -> list[str]:
    """The crawl's closing lines, from the job's manifest (the whole job, every run of it)."""
    from tweetform.cost import dollars, micro
    from tweetform.manifest import manifest_path, read_manifest

    output = str(settings.get("TWEETFORM_OUTPUT_DIR") or "data")
    found = read_manifest(output, job_id)
    if found is None:
        if settings.getbool("TWEETFORM_COLLECT"):  # the pages, and the manifest, are scrapy collect's to write
            return [f"job {job_id}: its pages are handed over to scrapy collect; `scrapy wait {job_id}` returns once they are written"]
        return []
    pages, errors, failed = (int(found.get(k) or 0) for k in ("pages", "errors", "failed_pages"))
    runs = len(found.get("runs") or [])
    money = f"{dollars(micro(found.get('spent_usd') or 0))} spent"
    if found.get("budget_usd"):
        money += f" of {dollars(micro(found['budget_usd']))}"
    level = found.get("last_complete_level")
    lines = [f"job {job_id} ended: exit status {code} ({exitcodes.NAMES.get(code, '?')}); "
             f"{pages:,} page(s), {errors:,} error record(s), {failed:,} failed; {money}"
             + (f"; levels complete: 1..{level}" if level else "")
             + (f" (whole job, {runs} runs)" if runs > 1 else "")]
    buckets = [b for b in (found.get("bucket"), "errors") if b and (Path(output) / b).is_dir()]
    lines.append(f"data in {', '.join(str(Path(output) / b) for b in buckets) or output}; "
                 f"manifest {manifest_path(output, job_id)}")
    return lines


def implicit_jobdir(settings: Any, job_id: str) -> Path:
    """Where a local job keeps its queue and state when no ``JOBDIR`` is given: beside its manifest."""
    from tweetform.export.files import JOBS_DIR

    return Path(str(settings.get("TWEETFORM_OUTPUT_DIR") or "data")) / JOBS_DIR / job_id


def continue_command(argv: list[str], job_id: str) -> str:
    """The command that continues this job after any stop: the same command line (``argv`` without the command
    name, as Scrapy leaves it), its ``-a job`` and ``-a budget`` taken out, ``-a job=<this job>`` added."""
    program = "tweetform" if Path(argv[0]).name == "tweetform" else "scrapy"
    kept: list[str] = []
    rest = iter(argv[1:])
    for arg in rest:
        if arg == "-a":
            value = next(rest, "")
            if value.split("=", 1)[0].strip() not in ("job", "budget"):
                kept += [arg, value]
        elif arg.startswith("-a") and arg[2:].split("=", 1)[0].strip() in ("job", "budget"):
            continue
        else:
            kept.append(arg)
    shown = [_without_secrets(arg) for arg in kept]
    line = shlex.join([program, "crawl", *shown, "-a", f"job={job_id}"])
    # the line is logged: a secret given on the command line is shown as *** and must be given again
    return line + (" (give the *** values again)" if shown != kept else "")


#: settings whose value is a secret as a whole (credentials JSON, passwords, tokens)
_SECRET_SETTING = re.compile(r"(CREDENTIAL|PASSWORD|SECRET|TOKEN|BEARER)", re.IGNORECASE)
#: the password of any ``scheme://user:password@host`` inside a value (proxies, REDIS_URL)
_URL_PASSWORD = re.compile(r"([A-Za-z][\w+.-]*://[^:/@\s\"']*):[^@\s\"']*@")


def _without_secrets(arg: str) -> str:
    name, eq, _ = arg.partition("=")
    if eq and _SECRET_SETTING.search(name):
        return f"{name}=***"
    return _URL_PASSWORD.sub(r"\1:***@", arg)


def distributed_job_end(settings: Any, job_id: str) -> tuple[str, int] | None:
    """(state, pages failed for good) of a distributed job that has ended; None if not (or Redis away)."""
    import redis

    from tweetform.state.redis import connection, control

    try:
        return control.job_ended(connection.from_settings(settings), job_id)
    except redis.RedisError:
        return None


def deep_crawl_warning(settings: Any, job: JobArgs) -> str | None:
    """A deep network crawl without max_users can reach millions of accounts: say what the plan expects."""
    from tweetform.api.endpoints import BLUESKY
    from tweetform.cost import job_budget_usd
    from tweetform.spiders.arguments import DEEP_DEPTH

    if job.spider not in ("friends", "followers") or job.depth < DEEP_DEPTH or job.max_users is not None:
        return None
    if job.api == BLUESKY:
        return f"depth={job.depth} without max_users expands every account reachable in {job.depth - 1} steps: give max_users=N to cap it"
    if job_budget_usd(job.budget, settings) != float("inf"):
        return None  # a budget caps it already, and the plan's look-up would be paid outside that budget
    from tweetform.planning import PlanError, plan_job

    head = f"depth={job.depth} without max_users expands every account reachable in {job.depth - 1} steps"
    try:
        est = plan_job(settings, job, sample=0)[0]  # one users look-up per 100 seeds; deeper levels extrapolated
    except (PlanError, OSError, ValueError) as exc:
        return f"{head}; the plan could not estimate it ({type(exc).__name__}): give max_users=N to cap it"
    return (f"{head}: the plan estimates {est.users:,} users, {est.summary()}; "
            "give max_users=N to cap it (scrapy plan shows the details)")


def warn_if_deep(settings: Any, job: JobArgs) -> None:
    """One warning line on stderr for a deep crawl without max_users (``scrapy crawl`` and ``scrapy push``)."""
    warning = deep_crawl_warning(settings, job)
    if warning:
        print(f"tweetform: warning: {warning}", file=sys.stderr)


def explain(code: int, stats: dict, settings: Any) -> str:
    """The last line of a crawl that did not collect everything: what happened, and where to look."""
    again = settings.get("TWEETFORM_CONTINUE")
    failed = int(stats.get("tweetform/pages/failed", 0) or 0)
    pages = f"{failed} page{'s' if failed != 1 else ''} failed for good"
    errors_dir = f"{settings.get('TWEETFORM_OUTPUT_DIR')}/errors"
    if code == exitcodes.NO_CREDENTIALS and stats.get("tweetform/credentials/missing"):
        return str(stats["tweetform/credentials/missing"])  # no credential of the kind an endpoint needs
    if code == exitcodes.NO_CREDENTIALS:
        return ("every credential was rejected by the API; the remaining work was not fetched: fix the credentials, then "
                + (f"`{again}` continues it" if again else "run the job again"))
    if code == exitcodes.UNREACHABLE:
        return f"the API at {settings.get('TWEETFORM_API_BASE')} never answered: {pages} (recorded in {errors_dir})"
    if code == exitcodes.PAGES_FAILED:
        return f"{pages}: recorded in {errors_dir} with reason failed"
    if code == exitcodes.ERROR and stats.get("tweetform/items/not_written"):
        return f"{stats['tweetform/items/not_written']} page(s) could not be written to {settings.get('TWEETFORM_OUTPUT_DIR')} (see the errors above)"
    if stats.get("tweetform/stream/stopped"):  # the filtered stream could not go on: the API's reason
        return str(stats["tweetform/stream/stopped"])
    if code == exitcodes.INTERRUPTED:
        return ("stopped before the end: the job is incomplete; "
                + (f"`{again}` continues it (what was done is not fetched again)" if again else "its workers go on with it"))
    return ""
