"""The quota a local job learnt, kept in its ``JOBDIR`` database: a resumed crawl provokes no 429.

Without it a continued crawl knows nothing of the windows its last run used
up, probes every lane once and meets a 429 on each one that is still empty.
Every answer's rate-limit state (limit, reset, lowest remaining) is written in
the open transaction — committed with the page's acknowledgement, like the rest
of what the page did — and read back on open for the windows that have not
reset yet (older ones are over: the quota is whole again).
"""

from __future__ import annotations

from typing import Any, Mapping

from tweetform.quota.book import KeyQuota, QuotaBook, Reservation
from tweetform.quota.pool import CredentialPool, Lane
from tweetform.state.local.database import Database


class KeptQuotaBook(QuotaBook):
    def __init__(self, pool: CredentialPool, db: Database, **kwargs: Any) -> None:
        super().__init__(pool, **kwargs)
        self.db = db
        now = self.clock()
        for alias, kind, endpoint, limit, reset, remaining in db.query(
                "SELECT alias, kind, endpoint, lim, reset, remaining FROM quota WHERE reset + ? > ?", (self.margin, now)):
            self.keys[(Lane(alias, kind), endpoint)] = KeyQuota(limit=limit, reset=reset, server_remaining=remaining)

    def answered(self, reservation: Reservation, status: int, headers: Mapping[str, str]) -> None:
        super().answered(reservation, status, headers)
        quota = self.keys.get((reservation.lane, reservation.endpoint))
        if quota is not None and quota.limit is not None and quota.reset:
            self.db.execute("INSERT OR REPLACE INTO quota (alias, kind, endpoint, lim, reset, remaining) VALUES (?, ?, ?, ?, ?, ?)",
                            (reservation.lane.alias, reservation.lane.kind, reservation.endpoint, quota.limit, quota.reset,
                             quota.server_remaining))
