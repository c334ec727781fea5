"""One collector at a time: a Redis lock with a token and a TTL, refreshed while it writes.

The lock's value names its holder (token, host, pid, output directory) and carries a
fencing token (``fence``: a number that grows with every lock taken). A
collector that finds the lock held exits with one line naming the holder —
unless the holder is a process of this host that no longer exists (a collector
killed with SIGKILL): then the new one takes the lock over at once instead of
waiting for the TTL. A collector that finds its lock gone or taken at a refresh
stops writing.

A collector frozen past its TTL (SIGSTOP, a VM paused, a long GC) must not write
the batch it held: it writes a page only while its hold is *confirmed* — seen in
Redis (a refresh or :meth:`CollectorLock.confirm`) less than a third of the TTL
ago by its monotonic clock, which counts the frozen time — and its acknowledgements
carry the lock's value, which ``page_ack.lua`` compares with the lock's: a
collector whose lock was taken over acknowledges nothing.
"""

from __future__ import annotations

import json
import os
import socket
import time
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
        self.ttl = ttl
        self.output_dir = output_dir
        self.value = ""
        self.confirmed_at = float("-inf")  # monotonic time of the last look that found the lock held (taken before the look)
        self._swap = script(server, "lock_swap")
        self._release = script(server, "lock_release")
        self._retake = script(server, "lock_retake")
        self.fence = 0  # this collector's fencing token (keys.collect_fence)
        self.took_over: dict[str, Any] | None = None  # the dead holder whose lock this one took

    def acquire(self) -> None:
        """Take the lock or raise :class:`LockHeld`."""
        asked = time.monotonic()
        self.fence = int(self.server.incr(keys.collect_fence()))
        self.value = json.dumps({"token": uuid.uuid4().hex, "fence": self.fence, "host": socket.gethostname(), "pid": os.getpid(),
                                 "dir": str(self.output_dir)})
        if self._take(asked):
            return
        raw = self.server.get(self.key)
        if raw is None:  # expired in between
            if self._take(asked):
                return
            raw = self.server.get(self.key) or b"{}"
        try:
            holder = json.loads(raw)
        except ValueError:
            holder = {}
        if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int) and not _alive(holder["pid"]):
            if self._swap(keys=[self.key], args=[raw, self.value, self.ttl_ms]):
                self.took_over = holder
                self.confirmed_at = asked
                return
        ttl = self.server.pttl(self.key)
        raise LockHeld(
            f"another collector is writing this dataset (host {holder.get('host', '?')}, pid {holder.get('pid', '?')}, "
            f"directory {holder.get('dir', '?')}); one collector at a time"
            + (f" (its lock expires in {ttl / 1000:.0f} s unless it refreshes it)" if ttl and ttl > 0 else "")
        )

    def _take(self, asked: float) -> bool:
        if self.server.set(self.key, self.value, nx=True, px=self.ttl_ms):
            self.confirmed_at = asked
            return True
        return False

    def refresh(self) -> bool:
        """Extend the TTL; False when this collector no longer holds the lock (it must stop).

        A lock that merely expired (Redis away longer than the TTL) and that nobody
        took since (the fencing counter still holds this collector's token) is taken again."""
        asked = time.monotonic()
        if self._swap(keys=[self.key], args=[self.value, self.value, self.ttl_ms]) or \
                self._retake(keys=[self.key, keys.collect_fence()], args=[self.value, self.ttl_ms, self.fence]):
            self.confirmed_at = asked
            return True
        return False

    def confirm(self) -> bool:
        """Before a write: True when the hold was confirmed less than a third of the TTL ago, or is now
        (the lock still carries this collector's value); False when another collector holds it. A look
        that took long (frozen while waiting for the answer) does not count: it looks again."""
        while time.monotonic() - self.confirmed_at >= self.ttl / 3:
            asked = time.monotonic()
            if self.server.get(self.key) not in (self.value, self.value.encode()):
                return False
            self.confirmed_at = asked
        return True

    def release(self) -> None:
        self._release(keys=[self.key], args=[self.value])
