"""The resources a local job was billed for, kept in its ``JOBDIR`` database: a continued job counts no
resource twice that the API billed once.

The API bills a resource once per (app, kind, id, UTC day) (:mod:`tweetform.cost.ledger`). A job continued
the same day sees again accounts its earlier run was billed for; without their ids it would count them
again, and its spend would exceed the bill. The ids of the last two days are read back on open; each
page's new ids go into the open transaction, committed with the page's acknowledgement.
"""

from __future__ import annotations

from typing import Mapping

from tweetform.cost.ledger import CostLedger
from tweetform.state.local.database import Database


class KeptCostLedger(CostLedger):
    def __init__(self, db: Database, prices: Mapping[str, float] | None = None) -> None:
        super().__init__(prices)
        self.db = db
        days = [d for (d,) in db.query("SELECT day FROM billed UNION SELECT day FROM billed_ids ORDER BY day DESC LIMIT 2")][::-1]
        for day in days:
            self.days.append(day)
            for app, kind, rid in db.query("SELECT app, kind, id FROM billed WHERE day = ?", (day,)):
                self.seen.setdefault((app, kind, day), set()).add(rid)
            for app, kind, ids in db.query("SELECT app, kind, ids FROM billed_ids WHERE day = ?", (day,)):
                self.seen.setdefault((app, kind, day), set()).update(ids.split("\n"))

    def new_ids(self, app: str, day: str, groups: list[tuple[str, list[str]]]) -> list[int]:
        if day not in self.days:  # a new UTC day: the ids of the days before yesterday are not needed any more
            self._seen(app, groups[0][0] if groups else "", day)
            self.db.execute("DELETE FROM billed WHERE day < ?", (self.days[0],))
            self.db.execute("DELETE FROM billed_ids WHERE day < ?", (self.days[0],))
        out = []
        for kind, ids in groups:
            seen = self._seen(app, kind, day)
            new = [i for i in dict.fromkeys(ids) if i not in seen]
            seen.update(new)
            if new:  # one row a page (an id never holds a newline): an insert an id cost ~1 µs each, 1,000 a page
                self.db.execute("INSERT INTO billed_ids (app, kind, day, ids) VALUES (?, ?, ?, ?)", (app, kind, day, "\n".join(new)))
            out.append(len(new))
        return out
