"""Accounts: hashing blocks, ids and screen names (O(1) both ways), profiles, states."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone
from typing import Literal

from .common import (
    _COIN_BLOCK,
    _DAY,
    DELETED,
    _FORCED_STATE,
    _GOLD,
    _LISTED_MIN_BYTE,
    _M22,
    _mix,
    NORMAL,
    PROTECTED,
    _SPECIAL_BELOW,
    SUSPENDED,
    _T2006,
    _T2010,
    _T2016,
    _T2024,
    TWITTER_EPOCH_MS,
    _UCS_BLOCK,
    _UNLISTED_CODE,
)
from .vocabulary import _b62, _EMOJI, _FIRST, HASHTAGS, _LAST, _LOCATIONS, _NOUNS, _ROLES, _WORD_TABLE
from .records import Counts, User


class _Accounts:
    """Per-user facts derived from the seed: ids, names, profiles, account states. A mixin of :class:`World`."""

    # ---- hashing ---------------------------------------------------------------------

    def _h(self, key: int, x: int) -> int:
        return _mix(key + x * _GOLD)

    def _gen_ucs_block(self, b: int) -> bytes:
        # 2 bytes per user: activity class byte, state byte.
        return hashlib.shake_128(self._bkey + b"ucs" + b.to_bytes(4, "little")).digest(2 * _UCS_BLOCK)

    def _gen_coin_block(self, b: int) -> bytes:
        # one byte per tier per user: user v's coins are bytes [v*T, v*T+T) of its block.
        return hashlib.shake_128(self._bkey + b"coin" + b.to_bytes(4, "little")).digest(self._tiers * _COIN_BLOCK)

    def _class_byte(self, v: int) -> int:
        return self._ucs_block(v >> 12)[2 * (v & (_UCS_BLOCK - 1))]

    def _state(self, v: int) -> int:
        if v < _SPECIAL_BELOW:
            return _FORCED_STATE.get(v, NORMAL)
        b = self._ucs_block(v >> 12)[2 * (v & (_UCS_BLOCK - 1)) + 1]
        if b >= 16:
            return NORMAL
        return SUSPENDED if b < 5 else DELETED if b < 8 else PROTECTED

    def _listed(self, v: int) -> bool:
        """Appears in follow lists (not suspended, not deleted)."""
        if v < _SPECIAL_BELOW:
            return _FORCED_STATE.get(v, NORMAL) <= PROTECTED
        return self._ucs_block(v >> 12)[2 * (v & (_UCS_BLOCK - 1)) + 1] >= _LISTED_MIN_BYTE

    # ---- ids and names ------------------------------------------------------------------

    def _id(self, i: int) -> int:
        q, r = divmod(i, 3)
        if r == 0:
            return 12 + q * self._small_step + (0 if q == 0 else (q * 2654435761 + self._k_id) % self._small_step)
        if r == 1:
            return 1_000_000_000 + q * self._mid_step + (q * 40503 + self._k_id) % self._mid_step
        ms = _T2016 - TWITTER_EPOCH_MS + (i * 0x9E3779B1 + self._k_id) % (_T2024 - _T2016)
        return (ms << 22) | i

    def index_of(self, uid: int) -> int | None:
        """The index of user id ``uid``, or None if no such user ever existed. O(1)."""
        if not isinstance(uid, int) or isinstance(uid, bool) or uid < 12 or uid >= 1 << 63:
            return None
        if uid < 1_000_000_000:
            i = 3 * ((uid - 12) // self._small_step)
        elif uid < 1 << 40:
            i = 3 * ((uid - 1_000_000_000) // self._mid_step) + 1
        else:
            i = uid & _M22
        if i >= self.users or self._id(i) != uid:
            return None
        return i

    def id_of(self, index: int) -> int:
        """The user id of index ``index`` (0 <= index < users)."""
        if not 0 <= index < self.users:
            raise IndexError(f"user index {index} out of range 0..{self.users - 1}")
        return self._id(index)

    def _gen_screen_name(self, i: int) -> str:
        if i == 0:
            return "jack"
        h = self._h(self._k_name, i)
        digits = str(i)
        first = _FIRST[h % 40][1]
        last = _LAST[(h >> 8) % 25][1]
        noun = _NOUNS[(h >> 16) % 20]
        noun2 = _NOUNS[(h >> 24) % 20]
        style = (h >> 32) % 8
        words = (
            first + last, (first + "_" + last).lower(), (first + last).lower(), first + "_",
            "the" + noun + noun2, first.lower() + noun, noun + noun2, first[0].lower() + last.lower(),
        )[style]
        return words[: 15 - len(digits)] + digits

    def _display_name(self, i: int) -> str:
        if i == 0:
            return "jack"
        h = self._h(self._k_name, i)
        first = _FIRST[h % 40][0]
        last = _LAST[(h >> 8) % 25][0]
        style = (h >> 32) % 8
        if style == 4:
            name = "The " + _NOUNS[(h >> 16) % 20] + " " + _NOUNS[(h >> 24) % 20]
        elif style == 6:
            name = _NOUNS[(h >> 16) % 20] + " " + _NOUNS[(h >> 24) % 20]
        elif style == 3:
            name = first
        else:
            name = first + " " + last
        if (h >> 40) % 10 == 0:
            name += _EMOJI[(h >> 44) % len(_EMOJI)]
        return name

    _NAME_RE = re.compile(r"[A-Za-z_]+([1-9][0-9]*)")

    def index_of_screen_name(self, name: str) -> int | None:
        """The index of ``@name`` (case-insensitive), or None. O(1)."""
        if not isinstance(name, str):
            return None
        name = name.lstrip("@").lower()
        if name == "jack":
            return 0
        m = self._NAME_RE.fullmatch(name)
        if m is None or len(name) > 15:
            return None
        i = int(m.group(1))
        if i >= self.users or self._screen_name(i).lower() != name:
            return None
        return i

    # ---- users -------------------------------------------------------------------------

    def _created_ms(self, i: int, uid: int | None = None) -> int:
        if uid is None:
            uid = self._id(i)
        if i % 3 == 0:  # 2006-03-21 .. 2009-12-31, in id order like the real pre-snowflake ids
            return _T2006 + (uid - 12) * (_T2010 - _T2006 - _DAY) // 10**9
        if i % 3 == 1:  # 2010 .. mid-2016
            return _T2010 + (uid - 1_000_000_000) * (_T2016 - _T2010 - _DAY) // 5_600_000_000
        return (uid >> 22) + TWITTER_EPOCH_MS  # a real snowflake: the id is the time

    def _tier_of(self, i: int) -> int:
        return (i + 1).bit_length() - 1

    def _expected_followers(self, i: int) -> float:
        return self._tier_ef[(i + 1).bit_length() - 1]

    def _gen_user(self, i: int) -> User:
        h = _mix(self._k_prof + i * _GOLD)
        h2 = _mix(h + 1)
        uid = self._id(i)
        state = self._state(i)
        screen = self._screen_name(i)
        if i == 0:
            description = "#setmyfiretruckfree"
        elif (h >> 8) % 10 < 3:
            description = ""
        else:
            description = (f"{_ROLES[h % len(_ROLES)]} | {_WORD_TABLE[h2 & 0xFFFF]} {_WORD_TABLE[(h2 >> 16) & 0xFFFF]}"
                           f" & {_WORD_TABLE[(h2 >> 32) & 0xFFFF]} | #{HASHTAGS[(h >> 16) % len(HASHTAGS)]}")
        return User(  # positional (a hot path): the fields in declaration order
            uid,  # id
            i,  # index
            screen,  # screen_name
            self._display_name(i),  # name
            datetime.fromtimestamp(self._created_ms(i, uid) / 1000, timezone.utc),  # created_at
            description,
            "" if (h >> 24) % 4 == 0 else _LOCATIONS[(h >> 28) % len(_LOCATIONS)],  # location
            f"https://example.org/~{screen.lower()}" if (h >> 34) % 5 == 0 else None,  # url
            state == PROTECTED,  # protected
            state == SUSPENDED,  # suspended
            state == DELETED,  # deleted
            (i < 16 and state == NORMAL) or (h >> 38) % 200 == 0,  # verified
            None if (h >> 42) % 10 < 8 else ("en", "es", "fr", "ja", "de")[(h >> 46) % 5],  # lang
            f"https://pbs.twimg.com/profile_images/{10**17 + h2 % (9 * 10**17)}/{_b62(h, 8)}_normal.jpg",
            self,  # _world
        )

    def user(self, uid: int) -> User | None:
        """The account with id ``uid`` (suspended/deleted ones too, flagged), or None if it never existed."""
        i = self.index_of(uid)
        return None if i is None else self._user(i)

    def user_by_screen_name(self, name: str) -> User | None:
        i = self.index_of_screen_name(name)
        return None if i is None else self._user(i)

    def state(self, uid: int) -> Literal["normal", "protected", "suspended", "deleted"] | None:
        i = self.index_of(uid)
        return None if i is None else ("normal", "protected", "suspended", "deleted")[self._state(i)]

    def _gen_counts(self, i: int) -> Counts:
        if self._codes()[i] == _UNLISTED_CODE:  # suspended or deleted: no lists, no timeline
            return Counts(0, 0, 0)
        return Counts(self._followers_count(i), self._friends_count(i), self._statuses_count(i))

    def counts(self, uid: int) -> Counts:
        """Exact (followers, friends, statuses) = lengths of followers(), following(), timeline(); cached."""
        i = self.index_of(uid)
        return Counts(0, 0, 0) if i is None else self._counts(i)
