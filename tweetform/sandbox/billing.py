"""The sandbox's billing ledger: pay-per-use as the API charges it since February 2026.

The prices and the rule are tweetform/api/pricing.py's (one table, README "Cost");
the counting here is the sandbox's own code, written apart from tweetform's
client-side accounting (tweetform/cost/) so that each checks the other:

* ``data`` is billed at the endpoint's kind, ``includes.users`` as User reads,
  ``includes.tweets`` as Post reads; media, places and polls are free. v1.1
  answers bill their top-level items only (``ids``, ``users``, ``statuses``, the
  one user of ``users/show``); objects embedded in them are not billed;
* a resource is (app, kind, id, UTC day of the logical clock): billed once a day;
  the counts endpoints are billed per answer with data instead (never deduplicated);
* only answers the client received whole are billed: never an error status, a
  200 without data, a truncated body or a dropped connection.

An app is its consumer key (a bearer token belongs to the app it was issued
for; a bearer-only credential is an app of its own) and is reported under the
app's alias. Each app has a credit balance (``--credits``, default unlimited)
and a monthly Post-read cap (``--post-cap``); at either limit requests answer
the usage-capped 429 (:func:`tweetform.sandbox.errors.usage_capped`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from tweetform.api import pricing

#: what one answer returns, by kind: ``((kind, (id, ...)), ...)``, repeats included; ids as
#: ints, so v1.1 and v2 answers naming one resource bill it once
Resources = tuple[tuple[str, tuple[int, ...]], ...]
_PER_REQUEST = frozenset(pricing.REQUEST_KIND.values())


def billed_resources(version: str, endpoint: str, answer: Any) -> Resources:
    """Every resource a successful answer returns, by the billing rule, grouped by kind
    (a per-request kind, counts: ``((kind, ()),)`` when the answer has data)."""
    per_request = pricing.REQUEST_KIND.get(endpoint)
    if per_request is not None:
        return ((per_request, ()),) if isinstance(answer, dict) and answer.get("data") else ()
    kind = pricing.DATA_KIND.get(endpoint)
    if kind is None:
        return ()
    out: dict[str, list[int]] = {}
    if version == "2":
        if not isinstance(answer, dict):
            return ()
        data = answer.get("data") or ()
        out[kind] = [int(item["id"]) for item in ([data] if isinstance(data, dict) else data)]
        includes = answer.get("includes") or {}
        for member, member_kind in pricing.INCLUDES_KIND.items():
            out.setdefault(member_kind, []).extend(int(item["id"]) for item in includes.get(member) or ())
    elif isinstance(answer, dict) and "ids" in answer:  # friends/ids, followers/ids
        ids = answer["ids"]
        out[kind] = ids if not ids or isinstance(ids[0], int) else [int(i) for i in ids]  # stringify_ids
    else:
        if isinstance(answer, list):  # user_timeline, users/lookup, statuses/lookup
            items: Any = answer
        elif "users" in answer:  # friends/list, followers/list
            items = answer["users"]
        elif "statuses" in answer:  # search/tweets
            items = answer["statuses"]
        elif isinstance(answer.get("id"), dict):  # statuses/lookup with map=true
            items = [t for t in answer["id"].values() if t is not None]
        else:  # users/show: one user
            items = [answer]
        out[kind] = [item["id"] for item in items]
    return tuple((k, tuple(ids)) for k, ids in out.items() if ids)


@dataclass
class AppAccount:
    """One app's bill."""

    alias: str
    resources: dict[str, int] = field(default_factory=dict)  # kind -> resources billed
    days: dict[str, dict[str, int]] = field(default_factory=dict)  # UTC day -> kind -> billed
    seen: dict[tuple[str, str], set[int]] = field(default_factory=dict)  # (day, kind) -> ids billed
    post_reads: dict[str, int] = field(default_factory=dict)  # UTC month -> Posts billed
    pages: set[tuple[str, Any]] = field(default_factory=set)  # (day, page) already charged whole

    def usd(self, prices: dict[str, float]) -> float:
        return round(sum(n * pricing.price(kind, prices) for kind, n in self.resources.items()), 6)


class Ledger:
    def __init__(self, prices: dict[str, float] | None = None, credits: float | None = None,
                 post_cap: int | None = None) -> None:
        self.prices = dict(pricing.PRICES_USD)
        self.prices.update(prices or {})
        self.credits = credits
        self.post_cap = post_cap
        self.apps: dict[str, AppAccount] = {}

    def _account(self, app: str, alias: str) -> AppAccount:
        acct = self.apps.get(app)
        if acct is None:
            acct = self.apps[app] = AppAccount(alias)
        return acct

    def blocked(self, app: str, endpoint: str, month: str) -> str | None:
        """Why the app may not call ``endpoint`` now (``"credits"``, ``"post_cap"``), or None.

        Out of credits, every billed endpoint fails; over the monthly cap, those
        returning Posts. The answer that crosses a limit is still served (so a
        balance may go slightly negative, as the API's does)."""
        kind = pricing.DATA_KIND.get(endpoint) or pricing.REQUEST_KIND.get(endpoint)
        acct = self.apps.get(app)
        if kind is None or acct is None:
            return None
        if self.credits is not None and acct.usd(self.prices) >= self.credits:
            return "credits"
        if self.post_cap is not None and kind == pricing.POST and acct.post_reads.get(month, 0) >= self.post_cap:
            return "post_cap"
        return None

    def charge(self, app: str, alias: str, resources: Resources, day: str, month: str, page: Any = None) -> int:
        """Bill what was not yet billed to the app on ``day``; returns how many resources that was.

        ``page`` (optional) names an answer whose resources never change (the server's cache
        key): the same page charged again the same day has nothing new, and is skipped whole."""
        if not resources:
            return 0
        acct = self._account(app, alias)
        today = acct.days.setdefault(day, {})
        if resources[0][0] in _PER_REQUEST:  # counts: every answer with data, never deduplicated
            kind = resources[0][0]
            acct.resources[kind] = acct.resources.get(kind, 0) + 1
            today[kind] = today.get(kind, 0) + 1
            return 1
        if page is not None:
            if (day, page) in acct.pages:
                return 0
            acct.pages.add((day, page))
        billed = 0
        for kind, ids in resources:
            seen = acct.seen.get((day, kind))
            if seen is None:
                seen = acct.seen[(day, kind)] = set()
            before = len(seen)
            seen.update(ids)
            new = len(seen) - before
            if not new:
                continue
            acct.resources[kind] = acct.resources.get(kind, 0) + new
            today[kind] = today.get(kind, 0) + new
            if kind == pricing.POST:
                acct.post_reads[month] = acct.post_reads.get(month, 0) + new
            billed += new
        return billed

    def post_reads(self, app: str, month: str) -> int:
        acct = self.apps.get(app)
        return acct.post_reads.get(month, 0) if acct else 0

    def daily_posts(self, app: str, days: list[str]) -> list[int]:
        acct = self.apps.get(app)
        return [(acct.days.get(d, {}).get(pricing.POST, 0) if acct else 0) for d in days]

    def report(self) -> dict[str, Any]:
        """``GET /_sandbox/billing``: ``{"total_usd", "apps": {alias: {"usd", "resources", "days"}}}``."""
        apps = {}
        for acct in self.apps.values():
            apps[acct.alias] = {
                "usd": acct.usd(self.prices),
                "resources": dict(acct.resources),
                "days": {d: dict(k) for d, k in acct.days.items()},
            }
        total = round(sum(a["usd"] for a in apps.values()), 6)
        return {"total_usd": total, "apps": apps, "credits": self.credits, "post_cap": self.post_cap}

    def reset(self) -> None:
        self.apps.clear()


def project_id(app: str) -> str:
    """A stable, numeric project id for an app (the API's are 16-19 digits)."""
    return str(10**15 + int.from_bytes(hashlib.sha256(app.encode()).digest()[:8], "little") % (9 * 10**15))
