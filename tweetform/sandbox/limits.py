"""Per-credential, per-endpoint rate limits as the API enforces them.

Each (credential alias, auth kind, endpoint) has its own window that starts at
its first request and ends at ``reset`` (an integer epoch second, as in the
``x-rate-limit-reset`` header). User-context and app-only requests draw on
separate pools. The limiter also keeps the counters tests and benchmarks read:
requests served and 429s sent, per key and per window.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

from tweetform.api import limits as api_limits

#: The defaults come from the one rate-limit table (tweetform/api/limits.py), read when a
#: limiter is made, so the sandbox enforces exactly what ``scrapy plan`` estimates.


@dataclass
class Window:
    start: float
    reset: int
    served: int = 0
    rejected: int = 0


@dataclass
class KeyState:
    limit: int
    window: Window | None = None
    last_request: float = 0.0
    history: list[Window] = field(default_factory=list)
    served: int = 0
    rejected: int = 0


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: int
    per_second: bool = False  # rejected by a per-second limit, window quota left


class RateLimiter:
    """Decide, per request, whether a credential may call an endpoint now."""

    def __init__(
        self,
        window_seconds: float = api_limits.WINDOW_SECONDS,
        overrides: dict[str, tuple[int | None, int | None]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.window_seconds = window_seconds
        self.limits = dict(api_limits.LIMITS)
        self.limits.update(overrides or {})
        self.clock = clock
        self.state: dict[tuple[str, str, str], KeyState] = {}

    def limit_for(self, endpoint: str, kind: str) -> int | None:
        user, app = self.limits.get(endpoint, (api_limits.UNLISTED_LIMIT, api_limits.UNLISTED_LIMIT))
        return user if kind == "user" else app

    def _current(self, key: tuple[str, str, str], limit: int, now: float) -> tuple[KeyState, Window]:
        st = self.state.get(key)
        if st is None:
            st = self.state[key] = KeyState(limit=limit)
        if st.window is None or now >= st.window.reset:
            st.window = Window(start=now, reset=math.ceil(now + self.window_seconds))
            st.history.append(st.window)
        return st, st.window

    def peek(self, alias: str, kind: str, endpoint: str) -> Decision:
        """Current quota without spending any (for rate_limit_status)."""
        limit = self.limit_for(endpoint, kind) or 0
        now = self.clock()
        st = self.state.get((alias, kind, endpoint))
        if st is None or st.window is None or now >= st.window.reset:
            return Decision(True, limit, limit, math.ceil(now + self.window_seconds))
        return Decision(True, limit, max(0, limit - st.window.served), st.window.reset)

    def hit(self, alias: str, kind: str, endpoint: str) -> Decision:
        """Spend one request of quota, or reject it with a 429 decision."""
        limit = self.limit_for(endpoint, kind) or 0
        now = self.clock()
        key = (alias, kind, endpoint)
        st, win = self._current(key, limit, now)
        remaining = limit - win.served
        if remaining <= 0:
            win.rejected += 1
            st.rejected += 1
            return Decision(False, limit, 0, win.reset)
        if endpoint in api_limits.PER_SECOND and now - st.last_request < 1.0:
            win.rejected += 1
            st.rejected += 1
            return Decision(False, limit, remaining, win.reset, per_second=True)
        win.served += 1
        st.served += 1
        st.last_request = now
        return Decision(True, limit, remaining - 1, win.reset)

    def counters(self) -> list[dict]:
        """Served and rejected requests per key, with each window's figures."""
        out = []
        for (alias, kind, endpoint), st in sorted(self.state.items()):
            out.append(
                {
                    "alias": alias,
                    "kind": kind,
                    "endpoint": endpoint,
                    "limit": st.limit,
                    "served": st.served,
                    "rate_limited": st.rejected,
                    "max_served_in_window": max((w.served for w in st.history), default=0),
                    "windows": [
                        {"start": w.start, "reset": w.reset, "served": w.served, "rate_limited": w.rejected}
                        for w in st.history
                    ],
                }
            )
        return out

    def reset_counters(self) -> None:
        self.state.clear()
