"""``scrapy status [--json]``: nodes, queues, jobs, buckets and credential quota, from Redis."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from scrapy.commands import ScrapyCommand
from scrapy.spiderloader import get_spider_loader

from tweetform.config import uses_redis
from tweetform.commands.errors import one_line_errors, with_redis_errors


def _age(ts: float) -> str:
    seconds = max(0, int(time.time() - ts))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def _clock(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) if ts else "-"


def render(snap: dict) -> str:
    lines = ["NODES"]
    if not snap["nodes"]:
        lines.append("  (none registered)")
    for n in snap["nodes"]:
        lines.append(f"  {'alive' if n['alive'] else 'DEAD '}  {n['worker']}  {n.get('spider', '')}  up {_age(n.get('started', time.time()))}")
    lines.append("QUEUES (queued / in flight / job messages waiting)")
    for q in snap["queues"]:
        if q["queued"] or q["in_flight"] or q["inbox"]:
            detail = ", ".join(f"{e} {c}" for e, c in q["by_endpoint"].items())
            lines.append(f"  {q['spider']:<10} {q['queued']:>7} / {q['in_flight']:>4} / {q['inbox']:>3}" + (f"   ({detail})" if detail else ""))
    lines.append(f"  dead-letter messages: {snap['dead_letter']}")
    lines.append("JOBS (spider, state, requests queued / in flight / parked, pages written, errors (failed), users expanded, started, finished)")
    for j in snap["jobs"]:
        lines.append(f"  {j['job']:<32} {j['spider'] or '?':<9} {j['state']:<9} {j['queued']:>6} / {j['in_flight']:>3} / {j['parked']:>4}"
                     f"  {j['pages']:>7} {j['errors']:>5} ({j['failed']}) {j['users_expanded']:>7}  {_clock(j['created'])}  {_clock(j['finished_at'])}")
        if j.get("plan"):
            lines.append(f"      left of the plan's {j['plan']['requests']:,} requests: {j['plan']['summary']}")
        if j.get("last_complete_level"):
            lines.append(f"      levels complete: 1..{j['last_complete_level']}")
        waiting = j.get("collect_waiting") or {}
        if waiting.get("pages"):
            lines.append(f"      waiting for scrapy collect: {waiting['pages']:,} pages ({waiting['bytes'] / 1e6:,.1f} MB)")
        money = j.get("money") or {}
        if money.get("spent_usd") or money.get("budget_usd"):
            of = f" of a ${money['budget_usd']:,.2f} budget" if money.get("budget_usd") else ""
            apps = ", ".join(f"{app} ${usd:,.2f}" for app, usd in money.get("apps", {}).items())
            lines.append(f"      spent ${money['spent_usd']:,.2f}{of}" + (f" ({apps})" if apps else ""))
    lines.append("BUCKETS (pages written)")
    for name, count in sorted(snap["buckets"].items()):
        lines.append(f"  {name:<20} {count:>9}")
    lines.append("QUOTA (credential lane, endpoint: remaining/limit, reset)")
    for q in snap["quota"]:
        reset = float(q.get("reset", 0) or 0)
        when = time.strftime("%H:%M:%S UTC", time.gmtime(reset)) if reset else "-"
        lines.append(f"  {q['lane']:<24} {q['endpoint']:<32} {q.get('remaining', '?')}/{q.get('limit', '?')}  reset {when}")
    return "\n".join(lines)


def add_plan_and_money(server: Any, snap: dict[str, Any]) -> None:
    """Each job's row gets what is left of its saved plan (about one request per page or error), its money
    and (friends, followers) its deepest complete level."""
    from tweetform.cost.redis_budget import spend_of
    from tweetform.planning import estimate_from_dict
    from tweetform.state.redis.jobs import job_last_complete_level

    for row in snap["jobs"]:
        if row.get("plan"):
            est = estimate_from_dict(row["plan"])
            left = est.after(row["pages"] + row["errors"])
            row["plan"] = {"requests": est.requests, "left": left.as_dict(), "summary": left.summary()}
        row["money"] = spend_of(server, row["job"])  # budget, spent and reserved in dollars, spent per app
        row["last_complete_level"] = job_last_complete_level(server, row["job"])  # network jobs: the whole job's


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False
    default_settings = {"LOG_ENABLED": False}

    def short_desc(self) -> str:
        return "Show distributed crawling: nodes, queues, jobs, buckets, credential quota"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        one_line_errors(parser)  # a bad option value: one line, exit 2
        parser.add_argument("--json", action="store_true", help="print the snapshot as JSON")

    @with_redis_errors
    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        if not uses_redis(self.settings):
            print("tweetform: REDIS_URL is not set: status reads the Redis that the workers share", file=sys.stderr)
            self.exitcode = 2
            return
        from tweetform.state.redis import connection, control  # here: every scrapy start imports this module

        server = connection.from_settings(self.settings)
        snap = control.snapshot(server, get_spider_loader(self.settings).list())
        add_plan_and_money(server, snap)
        print(json.dumps(snap, indent=1) if opts.json else render(snap))
