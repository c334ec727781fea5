"""Constants and hashing helpers shared by every part of the world."""

from __future__ import annotations

import hashlib
import math
import struct
import sys
from array import array
from collections import deque
from datetime import datetime, timezone
from functools import lru_cache
from typing import Callable, Iterable


TWITTER_EPOCH_MS = 1288834974657
WORLD_NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)
MAX_USERS = 1 << 22  # tweet ids keep the author index in 22 bits
TIMELINE_CAP = 3200
RECENT_DAYS = 7

_BIG_ENDIAN = sys.byteorder == "big"
assert array("I").itemsize == 4 and array("H").itemsize == 2  # lanes and tweet metas assume these
_M64 = (1 << 64) - 1
_GOLD = 0x9E3779B97F4A7C15
_M22 = (1 << 22) - 1
_MIN = 60_000
_DAY = 86_400_000


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


_NOW_MS = _ms(WORLD_NOW)
_T2006 = _ms(datetime(2006, 3, 21, 20, 50, 14, tzinfo=timezone.utc))  # jack's first day
_T2010 = _ms(datetime(2010, 1, 1, tzinfo=timezone.utc))
_T2011 = _ms(datetime(2011, 1, 1, tzinfo=timezone.utc))
_T2016 = _ms(datetime(2016, 6, 1, tzinfo=timezone.utc))
_T2024 = _ms(datetime(2024, 10, 1, tzinfo=timezone.utc))

# --- account states -------------------------------------------------------------
NORMAL, PROTECTED, SUSPENDED, DELETED = 0, 1, 2, 3
# state byte: < 5 suspended (2.0%), < 8 deleted (1.2%), < 16 protected (3.1%).
_LISTED_MIN_BYTE = 8
_SPECIAL_BELOW = 64  # indices below this have hand-placed states (see _FORCED_STATE)
_FORCED_STATE = {11: PROTECTED, 23: PROTECTED, 41: PROTECTED,
                 13: SUSPENDED, 29: SUSPENDED, 47: SUSPENDED,
                 17: DELETED, 37: DELETED, 53: DELETED}
_FORCED_LONG = (3, 5, 31)  # > 3,200 tweets
_FORCED_HEAVY = {7: 3, 19: 2}  # index -> heavy activity class (hundreds of friends)

# --- follow graph parameters ------------------------------------------------------
Q0 = 0.9  # fraction scale of the top tier; ~57% of users follow index 0
ALPHA = 0.8  # in-degree ~ rank**-ALPHA
# (activity factor, weight out of 256): lurkers to avid followers; mean ~1.1
_ACT_CLASSES = ((0.1, 40), (0.3, 60), (0.7, 70), (1.5, 50), (3.0, 26), (6.0, 10))
_HEAVY_ACTS = (10.0, 15.0, 25.0, 40.0)
_CLASS_OF = bytes(i for i, (_, w) in enumerate(_ACT_CLASSES) for _ in range(w))
assert len(_CLASS_OF) == 256
_COIN_BLOCK = 256  # users per coin block; tiers with S <= this are walked by slicing
_UCS_BLOCK = 4096  # users per (class, state) block
# The per-user "code" byte (World._codes): the activity class (0..5) of a listed user
# that is not special, _SPECIAL_CODE for listed special users (indices < 64, heavy
# followers), _UNLISTED_CODE for suspended/deleted users (and padding past the last user).
_N_CLASSES = len(_ACT_CLASSES)
_SPECIAL_CODE, _UNLISTED_CODE = 254, 255
_UNLISTED_OR = bytes(0xFF if b < _LISTED_MIN_BYTE else 0 for b in range(256))  # state byte -> OR mask
_LISTED01 = bytes(0 if b == _UNLISTED_CODE else 1 for b in range(256))  # code -> listed (0/1)
_IS_CLASS = tuple(bytes(int(b == e) for b in range(256)) for e in range(_N_CLASSES))  # code -> [code == e]
_ID_TABLE_MAX = 1 << 21  # worlds up to this size keep an id table (8 bytes a user) for long lists
_SLICE_BELOW = 32  # list a tier's followers by slicing when it has >= this many users per residue
_BULK_AFTER = 0.5  # build a tier's follower-count table once its walks cost ~ this * users candidates


@lru_cache(maxsize=None)
def _coin_below(thr: int) -> bytes:
    """translate() table: coin byte -> 1 if coin < thr else 0."""
    return bytes(int(b < thr) for b in range(256))


def _lanes(b: bytes, width: int) -> int:
    """``b`` as an int with one ``width``-byte little-endian lane per byte of ``b``."""
    if width == 1:
        return int.from_bytes(b, "little")
    wide = bytearray(width * len(b))
    wide[0::width] = b
    return int.from_bytes(wide, "little")


def _int_lanes(values: object, width: int) -> int:
    """A sequence of ints < 256**width as one int with ``width``-byte lanes (lane k = values[k])."""
    if width == 1:
        return int.from_bytes(bytes(values), "little")  # type: ignore[call-overload]
    arr = array("H" if width == 2 else "I", values)  # type: ignore[arg-type]
    if _BIG_ENDIAN:
        arr.byteswap()
    return int.from_bytes(arr.tobytes(), "little")


def _u32(values: object) -> array:
    return array("I", values)  # type: ignore[arg-type]


def _mix(x: int) -> int:
    """splitmix64 finaliser: a cheap, well-spread 64-bit hash of a 64-bit int."""
    x &= _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _unit(h: int) -> float:
    return (h >> 11) / 9007199254740992.0  # [0, 1)


def _loguniform(h: int, lo: float, hi: float) -> float:
    return lo * math.exp(_unit(h) * math.log(hi / lo))


# --- tweets ---------------------------------------------------------------------------
ORIGINAL, REPLY, RETWEET, QUOTE = 0, 1, 2, 3
_KIND_OF = (ORIGINAL,) * 180 + (REPLY,) * 30 + (RETWEET,) * 30 + (QUOTE,) * 16
_DELETED_BELOW = 3  # tweet-meta byte < 3: deleted (~1.2%)
_DELETED_BYTES = bytes(range(_DELETED_BELOW))
_NTAGS = (0, 0, 0, 0, 0, 0, 1, 1, 1, 2)  # hashtags per tweet
_IS_KEY = {REPLY: "is:reply", RETWEET: "is:retweet", QUOTE: "is:quote"}
_PUNCT = (".", "!", "?", "", ".", ":")


_new_core = tuple.__new__  # builds a _Core without NamedTuple's Python-level __new__ (hot path)
_new_tl = tuple.__new__
_u16x32 = struct.Struct("=32H").unpack  # a 64-byte digest as 32 native-order uint16 (as memoryview.cast("H"))
_blake2b = hashlib.blake2b
_LN_RT = math.log(30.0 / 0.02)  # retweet and favorite counts
_LN_RQ = math.log(20.0 / 0.05)  # reply and quote counts
_INV16 = 1.0 / 65536
_INV53 = 1.0 / 9007199254740992.0  # (h >> 11) * _INV53 == _unit(h) exactly (a power of two)
# math.log(hi / lo) of _gen_tl's log-uniform draws (lengths, then offsets and gaps)
_LN_TL = tuple(math.log(hi / lo) for lo, hi in (
    (50, 1000), (1, 61), (60, 300), (300, 2000), (2000, 6000),
    (10 * _MIN, 4 * _DAY), (10 * _DAY, 3 * 365 * _DAY), (20 * _MIN, 10 * _DAY)))


def bfs_expansion(seed_ids: Iterable[int], depth: int, direction: str, max_users: int | None,
                  list_of: Callable[[int], Iterable[int] | None]) -> list[int]:
    """The users a tweetf0rm-style crawl expands, in BFS order (``World.reachable``'s rules).

    ``list_of(uid)`` is the user's list in ``direction``, or None when it cannot be expanded
    (unknown, protected, suspended or deleted): such a user is still counted, as a crawl counts it."""
    if not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be an int >= 1, got {depth!r}")
    if direction not in ("friends", "followers"):
        raise ValueError(f"direction must be 'friends' or 'followers', got {direction!r}")
    if max_users is not None and max_users < 0:
        raise ValueError(f"max_users must be >= 0, got {max_users!r}")
    seen: set[int] = set()
    queue: deque[tuple[int, int]] = deque()
    for sid in seed_ids:
        if sid not in seen:
            seen.add(sid)
            queue.append((sid, 1))
    order: list[int] = []
    while queue and (max_users is None or len(order) < max_users):
        uid, level = queue.popleft()
        order.append(uid)
        if level >= depth:
            continue
        for x in list_of(uid) or ():
            if x not in seen:
                seen.add(x)
                queue.append((x, level + 1))
    return order
