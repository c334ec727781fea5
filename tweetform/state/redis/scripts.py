"""The Lua scripts of the Redis backend, one ``lua/<name>.lua`` file each.

A line ``-- include: <name>`` pulls another file in (the quota scripts share
their helpers). Scripts are registered with redis-py, which sends them once
(``SCRIPT LOAD``) and then calls them by digest (``EVALSHA``).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

LUA = Path(__file__).with_name("lua")


@functools.cache
def source(name: str) -> str:
    lines = []
    for line in (LUA / f"{name}.lua").read_text().splitlines():
        if line.startswith("-- include: "):
            lines.append(source(line.removeprefix("-- include: ").strip()))
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def load(server: Any, name: str) -> Any:
    """A callable script: ``script(keys=[...], args=[...], client=pipe_or_None)``."""
    return server.register_script(source(name))


def names() -> list[str]:
    return sorted(p.stem for p in LUA.glob("*.lua"))
