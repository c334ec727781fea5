"""``World``: the parts put together, with its construction, identity and test helpers."""

from __future__ import annotations

import hashlib
import threading
from array import array
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from .common import (
    ALPHA,
    DELETED,
    _FORCED_LONG,
    _FORCED_STATE,
    _GOLD,
    MAX_USERS,
    _mix,
    NORMAL,
    _NOW_MS,
    PROTECTED,
    Q0,
    _SPECIAL_BELOW,
    SUSPENDED,
    TIMELINE_CAP,
    WORLD_NOW,
)
from .generator import _Accounts
from .graph import _Graph
from .counting import _Counting
from .timelines import _Timelines
from .tweets import _Tweets
from .search_index import _Search
from .engagement import _Engagement, Chain, EngagementIndex
from .lists import _Lists

if TYPE_CHECKING:
    from .search_index import _SearchIndex


# --- the world ------------------------------------------------------------------------------


class World(_Accounts, _Graph, _Counting, _Timelines, _Tweets, _Search, _Engagement, _Lists):
    """A deterministic synthetic Twitter. See the package docstring for the construction.

    All ids in and out are user/tweet ids (ints), never indices, except
    ``index_of`` and ``User.index``.
    """

    now: datetime = WORLD_NOW

    def __init__(self, seed: int = 1, users: int = 100_000, *, search_users: int = 2_000) -> None:
        if not isinstance(users, int) or not 1 <= users <= MAX_USERS:
            raise ValueError(f"users must be an int in 1..{MAX_USERS}, got {users!r}")
        if not isinstance(search_users, int) or search_users < 0:
            raise ValueError(f"search_users must be a non-negative int, got {search_users!r}")
        self.seed = seed
        self.users = users
        self.search_users = search_users
        self.now_ms = _NOW_MS
        key = hashlib.blake2b(f"tweetform-world:{seed}".encode(), digest_size=32).digest()
        self._bkey = key[:16]
        hkeys = [int.from_bytes(key[16:24], "little")]
        while len(hkeys) < 16:
            hkeys.append(_mix(hkeys[-1] + _GOLD))
        (self._k_id, self._k_name, self._k_prof, self._k_tl, self._k_ref, self._k_graph,
         self._k_misc, *_) = hkeys
        self._tiers = users.bit_length()  # index i is in tier (i+1).bit_length()-1
        self._build_tiers()
        # expected followers per tier (popularity: listed counts, tweet engagement)
        self._tier_ef = tuple(max(1.0, users * Q0 * 2.0 ** (-ALPHA * t)) for t in range(self._tiers))
        # Id families: steps are spread to use the whole id range of each family.
        self._small_step = max(173, (10**9 - 100) // ((users + 2) // 3 + 1))
        self._mid_step = max(4093, 5_500_000_000 // ((users + 1) // 3 + 1))
        # Heavy followers: index % P == r (P a power of two, ~128-256 of them in big worlds).
        p = 64
        while users // p > 256:
            p *= 2
        self._heavy_p = p
        self._heavy_r = self._k_graph % p
        # Caches: bounded, per instance (a module-level cache would pin every World).
        self._ucs_block = lru_cache(maxsize=1100)(self._gen_ucs_block)
        self._coin_block = lru_cache(maxsize=512)(self._gen_coin_block)
        self._tier_coins = lru_cache(maxsize=4)(self._gen_tier_coins)
        self._friends_idx = lru_cache(maxsize=1 << 15)(self._gen_friends_idx)
        self._friends_ids = lru_cache(maxsize=4096)(self._gen_friends_ids)
        self._followers_ids = lru_cache(maxsize=1024)(self._gen_followers_ids)
        self._counts = lru_cache(maxsize=1 << 16)(self._gen_counts)
        self._tl = lru_cache(maxsize=1 << 16)(self._gen_tl)
        self._tmeta = lru_cache(maxsize=2048)(self._gen_tmeta)
        self._timeline_ids = lru_cache(maxsize=1024)(self._gen_timeline_ids)
        self._ref0 = lru_cache(maxsize=1 << 17)(self._gen_ref)  # before the cascades' walks (engagement.py)
        self._ref = lru_cache(maxsize=1 << 17)(self._chained_ref)
        self._user = lru_cache(maxsize=1 << 14)(self._gen_user)
        self._screen_name = lru_cache(maxsize=1 << 16)(self._gen_screen_name)
        self._tuser = lru_cache(maxsize=4096)(self._gen_tuser)
        self._index_lock = threading.Lock()
        self._indexes: dict[bool, _SearchIndex] = {}
        self._engagement_idx: EngagementIndex | None = None
        self._chain_lock = threading.Lock()
        self._chain_table: Chain | None = None
        self._list = lru_cache(maxsize=4096)(self._gen_list)
        self._lists_idx: tuple[dict[int, list[int]], dict[int, list[int]]] | None = None
        self._examples: dict[str, list[int]] | None = None
        self._special_list: tuple[tuple[int, int, bytes], ...] | None = None
        # Lazily built graph tables (see "Counting" in the module docstring). Each is
        # built whole, then published by one assignment, so racing threads at worst
        # build one twice.
        self._codes_arr: bytes | None = None
        self._id_table: array | None = None
        self._walk_tbls: list[tuple[bytes, ...] | None] = [None] * self._tiers
        self._slice_tbls: list[tuple[bytes, ...] | None] = [None] * self._tiers
        self._spec_tiers: list[tuple[tuple[int, ...], tuple[tuple[int, int, int], ...], int] | None] = [None] * self._tiers
        self._fcount_tbl: list[bytes | array | None] = [None] * self._tiers
        self._fcount_work = [0] * self._tiers
        self._friend_pref: list[array | None] = [None] * self._tiers
        self._friend_work = 0  # friend positions tested one by one so far (see _friends_count)

    def __repr__(self) -> str:
        return f"World(seed={self.seed!r}, users={self.users}, search_users={self.search_users})"

    # A World is a pure function of its arguments: copies are the same world.
    def __reduce__(self) -> tuple[object, tuple[int, int, int]]:
        return (_rebuild, (self.seed, self.users, self.search_users))

    def __copy__(self) -> World:
        return self

    def __deepcopy__(self, memo: dict) -> World:
        return self


    # ---- test helpers ------------------------------------------------------------------------------

    def examples(self) -> dict[str, list[int]]:
        """A few user ids per trait, for tests and demos (guaranteed non-empty for users >= 2000;
        ``protected``/``suspended``/``deleted``/``long_timeline`` for users >= 64).

        protected, suspended, deleted: account states; long_timeline: visible,
        > 3,200 tweets; many_followers: visible, > 1,000 followers (the most
        followed users when the world is too small for that); many_friends:
        visible, > 200 friends; ordinary: visible, 5-60 friends, 1-3,200 tweets.
        """
        if self._examples is None:
            n = self.users
            ex: dict[str, list[int]] = {
                "protected": [i for i, st in _FORCED_STATE.items() if st == PROTECTED and i < n],
                "suspended": [i for i, st in _FORCED_STATE.items() if st == SUSPENDED and i < n],
                "deleted": [i for i, st in _FORCED_STATE.items() if st == DELETED and i < n],
                "long_timeline": [i for i in _FORCED_LONG if i < n],
            }
            # Counts are exact but cheap here: follower counts stop once the threshold is passed.
            top = [i for i in range(min(n, 12)) if self._state(i) == NORMAL]
            many = [i for i in top if self._followers_count(i, stop=1001) > 1000]
            ex["many_followers"] = (many or top)[:3]
            ex["many_friends"] = [i for i in range(min(n, _SPECIAL_BELOW))
                                  if self._state(i) == NORMAL and self._friends_count(i) > 200][:3]
            ordinary: list[int] = []
            for k in range(n):
                i = (n // 2 + k) % n
                if i < _SPECIAL_BELOW or self._state(i) != NORMAL or self._is_heavy(i):
                    continue
                if not 1 <= self._tl(i).length or not 5 <= self._friends_count(i) <= 60:
                    continue
                if 1 <= self._statuses_count(i) <= TIMELINE_CAP and self._followers_count(i, stop=1) >= 1:
                    ordinary.append(i)
                    if len(ordinary) == 3:
                        break
            ex["ordinary"] = ordinary
            self._examples = {k: [self._id(i) for i in v] for k, v in ex.items()}
        return {k: list(v) for k, v in self._examples.items()}


def _rebuild(seed: int, users: int, search_users: int) -> World:
    return World(seed, users, search_users=search_users)
