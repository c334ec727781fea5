"""Follow edges added and removed between two crawls (jobs) of the same accounts.

Every page of a friends or followers list belongs to one *list*: its source
user and its direction (who the user follows, or who follows the user). Only
lists that both jobs crawled are compared — a user one job expanded and the
other did not says nothing about change — so an edge is *added* when a list
crawled by both holds it in the second job only, and *removed* when it is in
the first job's copy only. Edges are ``a → b``, *a follows b*, as in
:mod:`tweetform.export.graph`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from typing import IO, Any, Iterable

from tweetform.export.files import job_of
from tweetform.export.graph import FRIENDS, LIST_ENDPOINTS, _ids_in
from tweetform.items import PROVENANCE

Edge = tuple[str, str]
ListId = tuple[str, str]  # (source user, "friends" | "followers")


@dataclass
class JobEdges:
    """The follow edges one job found, by the list they came from."""

    lists: dict[ListId, set[Edge]] = field(default_factory=dict)

    def add_page(self, page: dict[str, Any]) -> None:
        prov = page.get(PROVENANCE) if isinstance(page.get(PROVENANCE), dict) else {}
        direction = LIST_ENDPOINTS.get(prov.get("endpoint"))
        if direction is None or prov.get("bucket") == "errors":
            return
        source = str(prov.get("source_user_id") or prov.get("key"))
        edges = self.lists.setdefault((source, direction), set())
        ids = _ids_in(page)
        edges.update((source, other) if direction == FRIENDS else (other, source) for other in ids)

    def edges(self, lists: Iterable[ListId]) -> set[Edge]:
        out: set[Edge] = set()
        for name in lists:
            out |= self.lists.get(name, set())
        return out


@dataclass
class EdgeDiff:
    added: set[Edge]
    removed: set[Edge]
    compared: int  # lists both jobs crawled
    only_first: int  # lists only the first job crawled (not compared)
    only_second: int
    edges_first: int  # edges of the compared lists, in each job
    edges_second: int

    def summary(self, first: str, second: str) -> str:
        skipped = ""
        if self.only_first or self.only_second:
            skipped = f"; not compared: {_n(self.only_first, 'list')} only {first} crawled, {self.only_second:,} only {second}"
        return (f"{first} → {second}: {_n(len(self.added), 'edge')} added, {len(self.removed):,} removed "
                f"({self.edges_first:,} → {_n(self.edges_second, 'edge')} in {_n(self.compared, 'list')} both jobs crawled{skipped})")


def _n(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def diff_jobs(pages: Iterable[dict[str, Any]], first: str, second: str) -> EdgeDiff:
    """Compare the follow lists the two jobs crawled (pages of other jobs are ignored)."""
    found = {first: JobEdges(), second: JobEdges()}
    for page in pages:
        job = job_of(page)
        if job in found:
            found[job].add_page(page)
    a, b = found[first], found[second]
    both = a.lists.keys() & b.lists.keys()
    edges_a, edges_b = a.edges(both), b.edges(both)
    return EdgeDiff(added=edges_b - edges_a, removed=edges_a - edges_b, compared=len(both),
                    only_first=len(a.lists.keys() - both), only_second=len(b.lists.keys() - both),
                    edges_first=len(edges_a), edges_second=len(edges_b))


def write_diff(result: EdgeDiff, out: IO[str]) -> int:
    """CSV ``change,source,target`` (``added`` / ``removed``), sorted; returns the rows written."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("change", "source", "target"))
    rows = [("removed", *e) for e in result.removed] + [("added", *e) for e in result.added]
    rows.sort(key=lambda r: (int(r[1]) if r[1].isdigit() else 0, r[1], int(r[2]) if r[2].isdigit() else 0, r[2], r[0]))
    writer.writerows(rows)
    return len(rows)
