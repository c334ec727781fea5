"""``scrapy plan SPIDER -a name=value …``: how many requests, quota windows, how long and how many dollars, before crawling.

Takes exactly the arguments of ``scrapy crawl`` (checked the same way), looks
the seeds up (one users look-up per 100 seeds, on the first credential) and
prints the estimate of :func:`tweetform.planning.estimate`. ``--json`` prints it
as JSON; ``--budget USD`` says what of the job a budget pays for (how deep, how
many users). Nothing is crawled and nothing is written.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING

from scrapy.commands import ScrapyCommand
from scrapy.spiderloader import get_spider_loader

from tweetform import exitcodes
from tweetform.commands.errors import number, one_line_errors

if TYPE_CHECKING:
    from tweetform.planning import Estimate

# Scrapy imports every command module on every start (COMMANDS_MODULE): planning is imported where the
# plan is made (tests/test_startup.py)

__all__ = ["Command", "render"]


def render(est: Estimate, counts: dict, lookups: int, lookup_endpoint: str, now: float | None = None) -> list[str]:
    """The plan as the lines ``scrapy plan`` prints."""
    from tweetform.planning import window_text
    from tweetform.quota.gate import human

    now = time.time() if now is None else now
    lines = []
    if counts:
        shown = list(counts.values())[:5]
        described = "; ".join(
            f"{c.user_id}{' @' + c.screen_name if c.screen_name else ''}: follows {c.friends:,}, followed by {c.followers:,}, "
            f"{c.statuses:,} {'posts' if est.api == 'bluesky' else 'tweets'}{' (protected)' if c.protected else ''}" for c in shown)
        more = f" and {len(counts) - len(shown):,} more" if len(counts) > len(shown) else ""
        lines.append(f"seeds ({lookups} {lookup_endpoint} request(s)): {described}{more}")
    if est.levels:
        levels = ", ".join(f"level {i + 1}: {'' if i == 0 else '≈'}{n:,}" for i, n in enumerate(est.levels))
        what = "posts" if est.spider == "cascade" else "users"
        lines.append(f"{what} to expand: {'≈' if not est.exact else ''}{est.users:,} ({levels})")
    elif est.users:
        lines.append(f"users: {est.users:,}")
    if est.tweets is not None:
        lines.append(f"tweets: up to {est.tweets:,}")
    width = max([26, *(len(e.endpoint) for e in est.endpoints)])  # Bluesky's method names are longer than X's paths
    for e in est.endpoints:
        wait = "no waiting" if e.seconds <= 0 else ("never (no credential may call it)" if e.seconds == float("inf") else human(e.seconds))
        lines.append(f"  {e.endpoint:<{width}} {e.requests:>9,} requests  {e.lanes} lane(s), {e.per_window:,} per {window_text(est.window)}  "
                     f"{e.windows:,} window(s)  {wait}")
    lines.append(f"cost: {est.cost_text()}" + ("" if est.api == "bluesky" else " — each resource once per app and UTC day"))
    if est.basis:
        lines.append(f"basis: {est.basis}")
    lines.append(f"estimate: {est.summary(now)}")
    lines += [f"note: {n}" for n in est.notes]
    return lines


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False
    default_settings = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "SPIDER [-a NAME=VALUE …] [--sample N] [--budget USD] [--json]"

    def short_desc(self) -> str:
        return "Estimate the requests, quota windows, time and dollars a crawl needs, before it starts"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        from tweetform.planning import PLAN_WAIT

        super().add_options(parser)
        one_line_errors(parser)  # a bad option value: one line, exit 2
        parser.add_argument("-a", dest="spargs", action="append", default=[], metavar="NAME=VALUE",
                            help="a spider argument, as for scrapy crawl (repeatable)")
        parser.add_argument("--json", action="store_true", help="print the estimate as JSON")
        parser.add_argument("--budget", type=number(float, 0, above=True), default=None, metavar="USD",
                            help="what of the job fits in this budget: how deep, how many users")
        parser.add_argument("--wait", type=number(float, 0), default=PLAN_WAIT, metavar="SECONDS",
                            help="when every credential's quota for a look-up is used up, wait this long at most for it")
        parser.add_argument("--sample", type=number(int, 0), default=100, metavar="N",
                            help="depth > 1: look at N accounts of level 2 (one list request; 0: none); "
                                 "search, conversation: read a page of N posts to estimate what includes cost (0: none)")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        from tweetform.cost import usd
        from tweetform.credentials import CredentialError
        from tweetform.job import ArgumentError
        from tweetform.planning import PLAN_WAIT, PlanError, network_endpoint
        from tweetform.planning_bluesky import plan_any

        try:
            loader = get_spider_loader(self.settings)
            if len(args) != 1:
                raise ArgumentError(f"give one spider: {', '.join(sorted(loader.list()))}")
            try:
                spidercls = loader.load(args[0])
            except KeyError:
                raise ArgumentError(f"unknown spider {args[0]!r}; the spiders are: {', '.join(sorted(loader.list()))}") from None
            raw = {}
            for pair in opts.spargs:
                name, sep, value = pair.partition("=")
                if not sep:
                    raise ArgumentError(f"-a takes NAME=VALUE, not {pair!r}")
                raw[name.strip()] = value
            job = spidercls.parse_arguments(raw, str(self.settings.get("TWEETFORM_API_VERSION")))
            note = getattr(spidercls, "plan_note", None)  # a crawl with nothing to count ahead (the stream)
            if note is not None:
                print(note(job))
                return
            wait = getattr(opts, "wait", PLAN_WAIT)
            if not 0 <= wait < float("inf"):
                raise ArgumentError("--wait must be 0 or more seconds")
            if job.api == "bluesky" and getattr(opts, "budget", None) is not None:
                raise ArgumentError("--budget: Bluesky's API is free, a budget has nothing to bound: leave --budget out for api=bluesky")
            est, counts, lookups, sampled, sample, spend = plan_any(self.settings, job, opts.sample, wait)
        except (ArgumentError, CredentialError, PlanError) as exc:
            print(f"tweetform: {exc}", file=sys.stderr)
            self.exitcode = getattr(exc, "code", exitcodes.BAD_INPUT)
            return
        budget = getattr(opts, "budget", None)  # more than 0: its option type (commands.errors.number)
        fit = est.fit(budget) if budget is not None else None
        if opts.json:
            print(json.dumps({**est.as_dict(), "fit": fit, "lookup_requests": lookups, "sample_requests": sampled, "sampled": len(sample),
                              "plan_spent_usd": usd(spend.micro_usd),
                              "plan_spent_usd_by_app": {a: usd(v) for a, v in sorted(spend.ledger.by_app.items())},
                              "seeds": [c.__dict__ for c in counts.values()]}, indent=2))
            return
        bsky = job.api == "bluesky"
        lookup_endpoint = "app.bsky.actor.getProfiles" if bsky else ("/2/users" if job.api == "2" else "/users/lookup")
        api = "Bluesky" if bsky else f"API v{job.api}"
        print(f"plan for {job.spider} ({', '.join(f'{k}={v}' for k, v in raw.items()) or 'no arguments'}; {api})")
        lines = render(est, counts, lookups, lookup_endpoint)
        if sampled and bsky:
            lines.insert(1, f"sample of level 2: {len(sample)} accounts ({sampled} request(s): a page of up to 5 seeds' lists, their profiles)"
                         if sample else f"sample: {sampled} request(s)")
        elif sampled:
            list_endpoint = f"/{job.spider}/list" if job.api == "1.1" else network_endpoint(job)
            lines.insert(1, f"sample of level 2: {len(sample)} accounts ({sampled} {list_endpoint} request)")
        if fit is not None:
            lines.append(f"budget: {fit}")
        if bsky:
            lines.append(f"this plan made {lookups + sampled} request(s), free like a crawl's")
        else:
            lines.append(f"this plan's own requests cost {spend.text()}: the API bills them like a crawl's")
        for line in lines:
            print(line)
