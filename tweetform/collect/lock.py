"""One collector at a time: a Redis lock with a token and a TTL, refreshed while it writes.

The lock's value names its holder (token, host, pid, output directory). A
collector that finds the lock held exits with one line naming the holder —
unless the holder is a process of this host that no longer exists (a collector
killed with SIGKILL): then the new one takes the lock over at once instead of
waiting for the TTL. A collector that finds its lock gone or taken at a refresh
stops writing.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from pathlib import Path
from typing import Any

from tweetform.collect.stream import script
from tweetform.state.redis import keys


class LockHeld(Exception):
    """Another collector holds the lock (the message names it)."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class CollectorLock:
    def __init__(self, server: Any, output_dir: Path, ttl: float) -> None:
        self.server = server
        self.key = keys.collect_lock()
        self.ttl_ms = max(1, int(ttl * 1000))
        self.value = json.dumps({"token": uuid.uuid4().hex, "host": socket.gethostname(), "pid": os.getpid(),
                                 "dir": str(output_dir)})
        self._swap = script(server, "lock_swap")
        self._release = script(server, "lock_release")
        self.took_over: dict[str, Any] | None = None  # the dead holder whose lock this one took

    def acquire(self) -> None:
        """Take the lock or raise :class:`LockHeld`."""
        if self.server.set(self.key, self.value, nx=True, px=self.ttl_ms):
            return
        raw = self.server.get(self.key)
        if raw is None:  # expired in between
            if self.server.set(self.key, self.value, nx=True, px=self.ttl_ms):
                return
            raw = self.server.get(self.key) or b"{}"
        try:
            holder = json.loads(raw)
        except ValueError:
            holder = {}
        if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int) and not _alive(holder["pid"]):
            if self._swap(keys=[self.key], args=[raw, self.value, self.ttl_ms]):
                self.took_over = holder
                return
        ttl = self.server.pttl(self.key)
        raise LockHeld(
            f"another collector is writing this dataset (host {holder.get('host', '?')}, pid {holder.get('pid', '?')}, "
            f"directory {holder.get('dir', '?')}); one collector at a time"
            + (f" (its lock expires in {ttl / 1000:.0f} s unless it refreshes it)" if ttl and ttl > 0 else "")
        )

    def refresh(self) -> bool:
        """Extend the TTL; False when this collector no longer holds the lock (it must stop).

        A lock that merely expired (Redis away longer than the TTL) and that nobody
        took is taken again."""
        if self._swap(keys=[self.key], args=[self.value, self.value, self.ttl_ms]):
            return True
        return bool(self.server.set(self.key, self.value, nx=True, px=self.ttl_ms))

    def release(self) -> None:
        self._release(keys=[self.key], args=[self.value])
