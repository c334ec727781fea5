"""``GET /2/usage/tweets``: the app's Post reads, as the API reports them.

The sandbox treats each app as its own project. ``project_usage`` is the Posts
billed this UTC month (of the logical clock), ``project_cap`` the monthly cap
(``--post-cap``; the API's pay-per-use default, 2,000,000, when unset). With
``usage.fields=daily_project_usage`` / ``daily_client_app_usage`` the last
``days`` days (1-90, default 7) come per day, oldest first.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from .billing import Ledger, project_id
from .clock import LogicalClock
from .params import Params

DEFAULT_POST_CAP = 2_000_000
USAGE_FIELDS = frozenset(
    {"cap_reset_day", "daily_client_app_usage", "daily_project_usage", "project_cap", "project_id", "project_usage"}
)


def usage_tweets(ledger: Ledger, clock: LogicalClock, app: str, p: Params) -> dict[str, Any]:
    wanted = set(p.fields("usage.fields", USAGE_FIELDS))
    days = p.int("days", 7, 1, 90) or 7
    pid = project_id(app)
    cap = ledger.post_cap if ledger.post_cap is not None else DEFAULT_POST_CAP
    data: dict[str, Any] = {
        "cap_reset_day": 1,  # the monthly cap resets on the first day of each UTC month
        "project_cap": str(cap),
        "project_id": pid,
        "project_usage": str(ledger.post_reads(app, clock.month())),
    }
    if wanted & {"daily_project_usage", "daily_client_app_usage"}:
        today = clock.utc().replace(hour=0, minute=0, second=0, microsecond=0)
        dates = [today - timedelta(days=d) for d in range(days - 1, -1, -1)]
        counts = ledger.daily_posts(app, [d.strftime("%Y-%m-%d") for d in dates])
        series = [{"date": d.strftime("%Y-%m-%dT00:00:00.000Z"), "usage": str(n)} for d, n in zip(dates, counts)]
        if "daily_project_usage" in wanted:
            data["daily_project_usage"] = {"project_id": pid, "usage": series}
        if "daily_client_app_usage" in wanted:
            data["daily_client_app_usage"] = [{"client_app_id": pid, "usage": series, "usage_result_count": len(series)}]
    return {"data": data}
