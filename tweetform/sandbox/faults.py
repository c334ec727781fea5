"""Faults injected on demand: server errors, dropped connections, truncated
bodies and slow answers, at configured rates.

``injected`` counts what was injected: each kind's answers, and ``delayed_ms``, the time
answers were held by ``latency`` and ``slow`` as the sandbox's event loop measured it
(what tests read instead of timing answers themselves).

Decisions come from a ``random.Random`` seeded by the world seed and drawn in
request arrival order, so a run with the same seed and the same request order
sees the same faults.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import asdict, dataclass, fields


@dataclass
class FaultRates:
    error: float = 0.0  # 500 code 131 / 503 code 130, half each
    drop: float = 0.0  # connection closed after part of the body
    truncate: float = 0.0  # 200 with a JSON body cut short
    slow: float = 0.0  # answered after slow_seconds
    slow_seconds: float = 2.0
    latency: float = 0.0  # seconds added to every API answer

    def update(self, values: dict) -> None:
        known = {f.name for f in fields(self)}
        for name, value in values.items():
            if name not in known:
                raise ValueError(f"unknown fault setting {name!r}; known: {sorted(known)}")
            value = float(value)
            if value < 0 or (name in ("error", "drop", "truncate", "slow") and value > 1):
                raise ValueError(f"fault setting {name} out of range: {value}")
            setattr(self, name, value)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Fault:
    kind: str | None  # None, "error", "drop", "truncate"
    status: int = 200
    delay: float = 0.0


class FaultInjector:
    def __init__(self, seed: int, rates: FaultRates | None = None) -> None:
        self.rates = rates or FaultRates()
        self._rng = random.Random(f"faults-{seed}")
        self.injected: dict[str, int] = {"error": 0, "drop": 0, "truncate": 0, "slow": 0, "delayed_ms": 0}

    def draw(self) -> Fault:
        r = self.rates
        delay = r.latency
        if r.slow and self._rng.random() < r.slow:
            self.injected["slow"] += 1
            delay += r.slow_seconds
        roll = self._rng.random()
        if roll < r.error:
            self.injected["error"] += 1
            return Fault("error", 503 if self._rng.random() < 0.5 else 500, delay)
        roll -= r.error
        if roll < r.drop:
            self.injected["drop"] += 1
            return Fault("drop", 200, delay)
        roll -= r.drop
        if roll < r.truncate:
            self.injected["truncate"] += 1
            return Fault("truncate", 200, delay)
        return Fault(None, 200, delay)

    async def hold(self, fault: Fault) -> None:
        """Hold the answer for the fault's delay, counted in ``injected["delayed_ms"]``."""
        if fault.delay:
            loop = asyncio.get_running_loop()
            start = loop.time()
            await asyncio.sleep(fault.delay)
            self.injected["delayed_ms"] += round((loop.time() - start) * 1000)
