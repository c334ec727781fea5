"""The sandbox's one logical clock: wall time plus an offset tests can set.

It decides what depends on the *world's* time: the UTC day (and month) resources
are billed in, and how far the world has evolved. Rate-limit windows, their reset
headers and OAuth timestamp checks stay on wall time (a client's clock is real).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Callable


class LogicalClock:
    def __init__(self, wall: Callable[[], float] = time.time, epoch: float | None = None) -> None:
        self._wall = wall
        #: the world's epoch: the logical time it was created (evolution counts from here); ``epoch`` (the sandbox's
        #: --epoch) puts it, and the logical clock, at that time instead of now
        self.started = wall() if epoch is None else float(epoch)
        self.offset = 0.0 if epoch is None else self.started - wall()

    def now(self) -> float:
        """Logical seconds since the Unix epoch."""
        return self._wall() + self.offset

    def set(self, offset: float) -> None:
        self.offset = float(offset)

    def advance(self, seconds: float) -> None:
        self.offset += float(seconds)

    def elapsed(self) -> float:
        """Logical seconds since the world was created (negative if set back before it)."""
        return self.now() - self.started

    def utc(self, at: float | None = None) -> datetime:
        return datetime.fromtimestamp(self.now() if at is None else at, timezone.utc)

    def day(self, at: float | None = None) -> str:
        """The UTC day, ``YYYY-MM-DD``: the billing day."""
        return self.utc(at).strftime("%Y-%m-%d")

    def month(self, at: float | None = None) -> str:
        """The UTC month, ``YYYY-MM``: the period of the monthly Post-read cap."""
        return self.utc(at).strftime("%Y-%m")

    def as_dict(self) -> dict[str, object]:
        now = self.now()
        return {"offset": self.offset, "now": now, "utc": self.utc(now).isoformat(), "day": self.day(now)}
