"""Redis's own slow log as the record of which scripts ran, in order (tests of round trips and of what was asked)."""

from __future__ import annotations

from typing import Iterator

import redis

from tweetform.state.redis import scripts

SHAS = {scripts.load(redis.Redis(), name).sha: name for name in scripts.names()}  # registered: no connection made


def logging_every_command(client: redis.Redis) -> Iterator[redis.Redis]:
    """Fixture body: every command of ``client``'s Redis in its slow log while the test runs (put back as it was
    after), every script loaded first: a script a test before this one in the process did not load would show its
    NOSCRIPT attempt in the log too."""
    for name in scripts.names():
        client.script_load(scripts.source(name))
    before = client.config_get("slowlog-*")
    client.config_set("slowlog-log-slower-than", 0)
    client.config_set("slowlog-max-len", 10_000)
    client.slowlog_reset()
    yield client
    for name, value in before.items():
        client.config_set(name, value)
    client.slowlog_reset()


def scripts_run(client: redis.Redis) -> list[str]:
    """The scripts Redis ran since the last look, in order (then the log is emptied)."""
    entries = sorted(client.slowlog_get(10_000), key=lambda e: e["id"])
    client.slowlog_reset()
    names = []
    for entry in entries:
        words = entry["command"].split(b" ")
        if words[0].upper() == b"EVALSHA":
            names.append(SHAS[words[1].decode()])
    return names
