"""The Lua scripts of the Redis backend, one ``lua/<name>.lua`` file each.

A line ``-- include: <name>`` pulls another file in (the quota scripts share
their helpers). Scripts are registered with redis-py, which sends them once
(``SCRIPT LOAD``) and then calls them by digest (``EVALSHA``).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from redis.exceptions import NoScriptError

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


def in_pipeline(pipe: Any, script: Any, keys: list[Any], args: list[Any]) -> None:
    """Queue a script call by digest (EVALSHA) in a pipeline. redis-py's own way (``script(client=pipe)``)
    costs one more round trip per pipeline (SCRIPT EXISTS); :func:`execute` loads scripts only when needed."""
    pipe.evalsha(script.sha, len(keys), *keys, *args)


def execute(server: Any, build: Any) -> list[Any]:
    """Run ``build(pipe)``'s commands in one pipeline (one round trip); if Redis lost its scripts
    (a restart), load them and run it again — every script here may run twice without harm."""
    for attempt in (1, 2):
        pipe = server.pipeline(transaction=False)
        build(pipe)
        try:
            return pipe.execute()
        except NoScriptError:
            if attempt == 2:
                raise
            for name in names():
                server.script_load(source(name))
    raise AssertionError("unreachable")
