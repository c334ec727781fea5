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
