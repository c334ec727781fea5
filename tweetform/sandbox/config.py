"""Sandbox options, from command-line flags and an optional JSON/TOML file."""

from __future__ import annotations

import argparse
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .faults import FaultRates
from .world.common import MAX_USERS


@dataclass
class SandboxConfig:
    host: str = "127.0.0.1"
    port: int = 0
    seed: int = 1
    users: int = 100_000
    search_users: int = 2_000
    window: float = 900.0
    limits: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    credentials: str | None = None  # path; None = the built-in demo set
    faults: FaultRates = field(default_factory=FaultRates)
    timestamp_window: int = 300
    cache_mb: int = 256
    credits: float | None = None  # USD per app; None = unlimited
    post_cap: int | None = None  # Post reads per app per UTC month; None = no cap
    prices: dict[str, float] = field(default_factory=dict)  # kind -> USD, over tweetform/api/pricing.py
    evolve_every: float = 86_400.0  # logical seconds per step of the evolving world; 0 = frozen
    # the Bluesky face (sandbox/bluesky/face.py DEFAULTS): enabled, rate, window, access_ttl, refresh_ttl, session_limits,
    # ratelimit_headers
    bluesky: dict[str, Any] = field(default_factory=dict)
    stream_keepalive: float = 20.0  # seconds of silence before the filtered stream sends a keep-alive newline
    epoch: float | None = None  # the world's creation and the logical clock's start, Unix seconds; None = now

    def update(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            if name == "faults":
                self.faults.update(value)
            elif name == "latency":
                self.faults.update({"latency": value})
            elif name == "limits":
                self.limits.update(parse_limits(value))
            elif name == "prices":
                self.prices.update(parse_prices(value))
            elif name in ("credits", "post_cap"):
                setattr(self, name, None if value is None else _non_negative(name, value, float if name == "credits" else int))
            elif name == "bluesky":
                self.bluesky.update(parse_bluesky(value))
            elif name == "epoch":
                self.epoch = None if value is None else _non_negative(name, value, float)
                if self.epoch == float("inf"):
                    raise ValueError(f"epoch must be a time (Unix seconds), got {value!r}")
            elif name in ("evolve_every", "stream_keepalive"):
                setattr(self, name, _non_negative(name, value, float))
            elif hasattr(self, name):
                setattr(self, name, type(getattr(self, name))(value) if getattr(self, name) is not None else value)
                _check_range(name, getattr(self, name))
            else:
                raise ValueError(f"unknown sandbox option {name!r}")


#: the numeric options' ranges (lowest, highest; None: no bound); window must be more than 0
RANGES: dict[str, tuple[float | None, float | None]] = {
    "port": (0, 65535), "users": (1, MAX_USERS), "search_users": (0, MAX_USERS), "window": (0, None),
    "timestamp_window": (0, None), "cache_mb": (0, None),
}


def _check_range(name: str, value: Any) -> None:
    if name not in RANGES:
        return
    low, high = RANGES[name]
    too_low = low is not None and (value <= low if name == "window" else value < low)
    if too_low or (high is not None and value > high) or value != value:
        shown = f"more than {low:g}" if name == "window" else f"from {low:g} to {high:,}" if high is not None else f"at least {low:g}"
        raise ValueError(f"{name.replace('_', '-')} must be {shown}, not {value!r}")


def parse_limits(value: dict[str, Any]) -> dict[str, tuple[int | None, int | None]]:
    """``{"/friends/ids": 15}`` (both pools) or ``{"/friends/ids": [15, 30]}`` (user, app)."""
    out: dict[str, tuple[int | None, int | None]] = {}
    for endpoint, limit in value.items():
        if isinstance(limit, (list, tuple)):
            out[endpoint] = (limit[0], limit[1])
        else:
            out[endpoint] = (int(limit), int(limit))
    return out


BLUESKY_OPTIONS = {"enabled": bool, "rate": int, "window": float, "access_ttl": int, "refresh_ttl": int,
                   "session_limits": list, "ratelimit_headers": bool}


def parse_bluesky(value: Any) -> dict[str, Any]:
    """The Bluesky face's options: ``{"rate": 3000, "window": 300, ...}`` or ``["rate=30", ...]``."""
    if isinstance(value, (list, tuple)):
        value = dict(str(item).partition("=")[::2] for item in value)
    if not isinstance(value, dict):
        raise ValueError(f"bluesky options must be an object, got {value!r}")
    out: dict[str, Any] = {}
    for name, raw in value.items():
        kind = BLUESKY_OPTIONS.get(name)
        if kind is None:
            raise ValueError(f"unknown bluesky option {name!r}; known: {sorted(BLUESKY_OPTIONS)}")
        if kind is bool:
            out[name] = raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes", "on")
        elif kind is list:
            parts = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
            if len(parts) != 2:
                raise ValueError("bluesky session_limits takes two numbers: per 5 minutes, per day")
            out[name] = tuple(_non_negative(name, p, int) for p in parts)
        else:
            out[name] = _non_negative(f"bluesky {name}", raw, kind)
    return out


def _non_negative(name: str, value: Any, kind: type) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if number < 0 or number != number:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return number


def parse_prices(value: dict[str, Any]) -> dict[str, float]:
    """``{"post": 0.005}``: USD per resource of a kind of tweetform/api/pricing.py."""
    from tweetform.api import pricing

    out = {}
    for kind, usd in value.items():
        if kind not in pricing.PRICES_USD:
            raise ValueError(f"unknown price kind {kind!r}; known: {sorted(pricing.PRICES_USD)}")
        out[kind] = _non_negative(f"price of {kind}", usd, float)
    return out


def load_file(path: str) -> dict[str, Any]:
    text = Path(path).read_text(encoding="utf-8")
    return tomllib.loads(text) if path.endswith(".toml") else json.loads(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default 0: any free port)")
    parser.add_argument("--config", help="JSON or TOML file with any of these options")
    parser.add_argument("--seed", type=int, help="world seed (default 1)")
    parser.add_argument("--users", type=int, help="number of users in the world (default 100000)")
    parser.add_argument("--search-users", type=int, help="users whose tweets search covers (default 2000)")
    parser.add_argument("--window", type=float, help="rate-limit window in seconds (default 900)")
    parser.add_argument("--limit", action="append", default=[], metavar="ENDPOINT=N[,M]",
                        help="per-window limit of an endpoint, user[,app] (repeatable), e.g. /friends/ids=15")
    parser.add_argument("--credits", help="prepaid credits per app in USD (default unlimited)")
    parser.add_argument("--post-cap", help="monthly Post reads per app (default no cap)")
    parser.add_argument("--price", action="append", default=[], metavar="KIND=USD",
                        help="price of a resource kind (post, user, follow, list, like; counts_recent, counts_all per request; "
                             "repeatable), default tweetform/api/pricing.py")
    parser.add_argument("--evolve-every", help="logical seconds per step of the evolving world (default 86400; 0 = frozen)")
    parser.add_argument("--stream-keepalive", help="seconds of silence before the filtered stream sends a keep-alive (default 20)")
    parser.add_argument("--epoch", help="the world's creation, where the logical clock starts (Unix seconds; default: now)")
    parser.add_argument("--credentials", help="credentials JSON (tweetform's list or tweetf0rm's config.json)")
    parser.add_argument("--bluesky", action="append", default=[], metavar="OPTION=VALUE",
                        help="the Bluesky face: enabled, rate (requests per window per IP, default 3000), window "
                             "(seconds, 300), access_ttl (seconds, 7200), refresh_ttl, session_limits (N5MIN,NDAY), "
                             "ratelimit_headers (true; false: answers carry none, as the AppView)")
    parser.add_argument("--latency", type=float, help="seconds added to every answer")
    parser.add_argument("--error-rate", type=float, help="fraction of answers that are 500/503")
    parser.add_argument("--drop-rate", type=float, help="fraction of connections dropped mid-answer")
    parser.add_argument("--truncate-rate", type=float, help="fraction of answers with truncated JSON")
    parser.add_argument("--slow-rate", type=float, help="fraction of answers delayed by --slow-seconds")
    parser.add_argument("--slow-seconds", type=float, help="delay of a slow answer (default 2)")


def from_args(args: argparse.Namespace) -> SandboxConfig:
    config = SandboxConfig()
    if args.config:
        config.update(load_file(args.config))
    direct = {
        "host": args.host, "port": args.port, "seed": args.seed, "users": args.users,
        "search_users": args.search_users, "window": args.window, "credentials": args.credentials,
        "credits": args.credits, "post_cap": args.post_cap, "evolve_every": args.evolve_every,
        "stream_keepalive": args.stream_keepalive, "epoch": args.epoch,
    }
    config.update({k: v for k, v in direct.items() if v is not None})
    faults = {
        "latency": args.latency, "error": args.error_rate, "drop": args.drop_rate,
        "truncate": args.truncate_rate, "slow": args.slow_rate, "slow_seconds": args.slow_seconds,
    }
    config.faults.update({k: v for k, v in faults.items() if v is not None})
    prices = {}
    for item in args.price:
        kind, _, usd = item.partition("=")
        prices[kind] = usd
    config.update({"prices": prices})
    if args.bluesky:
        config.update({"bluesky": args.bluesky})
    for item in args.limit:
        endpoint, _, numbers = item.partition("=")
        parts = [int(n) for n in numbers.split(",")]
        config.limits[endpoint] = (parts[0], parts[-1])
    return config
