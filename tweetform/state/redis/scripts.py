"""The Lua scripts of the Redis backend, one ``lua/<name>.lua`` file each.

A line ``-- include: <name>`` pulls another file in (the quota scripts share
their helpers). Scripts are registered with redis-py, which sends them once
(``SCRIPT LOAD``) and then calls them by digest (``EVALSHA``).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, NamedTuple

from redis.exceptions import NoScriptError, RedisError

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


class Call(NamedTuple):
    """A script call waiting in an outbox (:mod:`tweetform.state.redis.outbox`) for the next round trip;
    ``failed(exc)`` is told when it did not reach Redis or Redis refused it, ``answered(answer)`` (if any) its answer."""

    script: Any
    keys: list[Any]
    args: list[Any]
    failed: Callable[[BaseException], None]
    answered: Callable[[Any], None] | None = None


def execute(server: Any, build: Any, outbox: Any = None, raise_on_error: bool = True) -> list[Any]:
    """Run ``build(pipe)``'s commands in one pipeline (one round trip); if Redis lost its scripts
    (a restart), load them and run it again — every script here may run twice without harm.
    ``outbox``: the calls waiting in it go first, in order, in the same round trip; their errors go to their
    own ``failed`` (an answer refused or lost there is never this call's error), their answers to their own
    ``answered``, and only those Redis did not know the script of are sent again. The answers returned are ``build``'s;
    an error answer among them is raised (the first), or with ``raise_on_error=False`` returned in its place, as
    redis-py's pipelines do (a caller whose commands are independent reads each answer). Redis away raises either way."""
    waiting: list[Call] = outbox.take() if outbox is not None else []
    answers: list[Any] | None = None
    sent: list[Any] = []
    for attempt in (1, 2):
        pipe = server.pipeline(transaction=False)
        for call in waiting:
            in_pipeline(pipe, call.script, call.keys, call.args)
        if answers is None:
            build(pipe)
        stack = pipe.command_stack[len(waiting):]
        try:
            got = pipe.execute(raise_on_error=False)
        except RedisError as exc:
            for call in waiting:
                call.failed(exc)
            if answers is None:
                raise
            break  # only waiting calls were sent again: build's answers stand
        again = []
        for call, answer in zip(waiting, got):
            if isinstance(answer, NoScriptError) and attempt == 1:
                again.append(call)
            elif isinstance(answer, Exception):
                call.failed(answer)
            elif call.answered is not None:
                call.answered(answer)
        own = got[len(waiting):]
        if answers is None and not (attempt == 1 and any(isinstance(a, NoScriptError) for a in own)):
            answers, sent = own, stack
        waiting = again
        if answers is not None and not waiting:
            break
        try:
            for name in names():
                server.script_load(source(name))
        except RedisError as exc:  # Redis away again, or refusing SCRIPT LOAD
            for call in waiting:
                call.failed(exc)
            if answers is None:
                raise
            break  # build's answers stand: a waiting call's failure is never this call's
    if answers is None:
        raise AssertionError("unreachable")
    if raise_on_error:
        pipe.raise_first_error(sent, answers)  # as pipe.execute() raises: the first error, numbered in build's commands
    return answers
