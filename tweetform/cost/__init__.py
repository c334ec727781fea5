"""What a crawl spends under pay-per-use, and the budget that bounds it.

* :mod:`tweetform.cost.rule` — which resources a page returned and the most a
  request can cost, by the billing rule of :mod:`tweetform.api.pricing`;
* :mod:`tweetform.cost.ledger` — the UTC-day dedupe and the totals per job and app;
* :mod:`tweetform.cost.middleware` — the spider middleware that counts each page;
* :mod:`tweetform.cost.budget` — reserving a page's maximum cost before it is
  sent (downloader middleware), shared by every worker of a job through Redis.

Amounts are kept in integer micro-dollars (``1 USD = 1_000_000``) so that
thousands of $0.005 additions never drift.
"""

MICRO = 1_000_000


def micro(usd: float) -> int:
    """Dollars as integer micro-dollars."""
    return int(round(usd * MICRO))


def usd(micro_usd: int | float) -> float:
    """Micro-dollars as dollars (six decimals)."""
    return round(micro_usd / MICRO, 6)


def dollars(micro_usd: int | float) -> str:
    """``$1,234.57`` (cents; a fraction of a cent shows three decimals)."""
    value = micro_usd / MICRO
    return f"${value:,.3f}" if 0 < abs(value) < 0.1 else f"${value:,.2f}"


#: what a job may spend when nothing says otherwise (-a budget, push --budget, TWEETFORM_BUDGET_USD)
DEFAULT_BUDGET_USD = 5.0
UNLIMITED = "unlimited"  # the one spelling that lifts the budget


def parse_budget(raw: object, name: str = "budget") -> float:
    """A budget as written by a user: US dollars more than 0 (``5``, ``$2.50``), or ``unlimited``
    (``math.inf``). ValueError says why not, in one line."""
    text = str(raw).strip()
    if text.lower() == UNLIMITED:
        return float("inf")
    try:
        value = float(text.lstrip("$"))
    except ValueError:
        raise ValueError(f"{name} must be an amount in US dollars, like 5 or 2.50, or {UNLIMITED}, not {raw!r}") from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name} must be more than 0 US dollars (or {UNLIMITED}), not {raw!r}")
    return value


def default_budget_usd(settings: object) -> float:
    """``TWEETFORM_BUDGET_USD``: the budget of a job that gives none (``inf``: unlimited)."""
    raw = settings.get("TWEETFORM_BUDGET_USD")  # type: ignore[attr-defined]
    return parse_budget(DEFAULT_BUDGET_USD if raw in (None, "") else raw, "TWEETFORM_BUDGET_USD")


def job_budget_usd(given: float | None, settings: object) -> float:
    """The budget a job runs under: its own (``-a budget``), else the default (``inf``: unlimited)."""
    return given if given else default_budget_usd(settings)


def budget_text(given: float | None, settings: object) -> str:
    """How the job's first log line states its budget."""
    usd_ = job_budget_usd(given, settings)
    if usd_ == float("inf"):
        return "no budget (budget=unlimited)"
    how = "" if given else " (default: TWEETFORM_BUDGET_USD; -a budget=USD or budget=unlimited to change it)"
    return f"budget {dollars(micro(usd_))}{how}"
