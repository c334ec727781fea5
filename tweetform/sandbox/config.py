"""Sandbox options, from command-line flags and an optional JSON/TOML file."""

from __future__ import annotations

import argparse
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .faults import FaultRates


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

    def update(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            if name == "faults":
                self.faults.update(value)
            elif name == "latency":
                self.faults.update({"latency": value})
            elif name == "limits":
                self.limits.update(parse_limits(value))
            elif hasattr(self, name):
                setattr(self, name, type(getattr(self, name))(value) if getattr(self, name) is not None else value)
            else:
                raise ValueError(f"unknown sandbox option {name!r}")


def parse_limits(value: dict[str, Any]) -> dict[str, tuple[int | None, int | None]]:
    """``{"/friends/ids": 15}`` (both pools) or ``{"/friends/ids": [15, 30]}`` (user, app)."""
    out: dict[str, tuple[int | None, int | None]] = {}
    for endpoint, limit in value.items():
        if isinstance(limit, (list, tuple)):
            out[endpoint] = (limit[0], limit[1])
        else:
            out[endpoint] = (int(limit), int(limit))
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
    parser.add_argument("--credentials", help="credentials JSON (tweetform's list or tweetf0rm's config.json)")
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
    }
    config.update({k: v for k, v in direct.items() if v is not None})
    faults = {
        "latency": args.latency, "error": args.error_rate, "drop": args.drop_rate,
        "truncate": args.truncate_rate, "slow": args.slow_rate, "slow_seconds": args.slow_seconds,
    }
    config.faults.update({k: v for k, v in faults.items() if v is not None})
    for item in args.limit:
        endpoint, _, numbers = item.partition("=")
        parts = [int(n) for n in numbers.split(",")]
        config.limits[endpoint] = (parts[0], parts[-1])
    return config
