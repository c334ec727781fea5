"""Timelines: tweet times and ids (O(1) decoding), statuses counts, the 3,200 cap."""

from __future__ import annotations

import hashlib
import math
from array import array

from .common import (
    _BIG_ENDIAN,
    _DAY,
    _DELETED_BELOW,
    _DELETED_BYTES,
    _FORCED_LONG,
    _GOLD,
    _INV53,
    _LN_TL,
    _M22,
    _MIN,
    _mix,
    _new_tl,
    _NOW_MS,
    _SPECIAL_BELOW,
    _T2011,
    TIMELINE_CAP,
    TWITTER_EPOCH_MS,
    _UNLISTED_CODE,
)
from .vocabulary import _SOURCE_HTML, _SOURCES
from .records import _Timeline


class _Timelines:
    """Each user's tweets as times and ids. A mixin of :class:`World`."""

    def _statuses_count(self, u: int) -> int:
        """``len(_timeline_ids(u))`` without the ids."""
        if self._codes()[u] == _UNLISTED_CODE:  # suspended or deleted
            return 0
        n = self._tl_length(u)
        if not n:
            return 0
        # uncached: counting a page of users must not flush the timelines being read
        meta = hashlib.shake_128(self._bkey + b"tw" + u.to_bytes(4, "little")).digest(8 * n)  # = _gen_tmeta(u)
        return len(meta[4::8].translate(None, _DELETED_BYTES))

    # ---- timelines --------------------------------------------------------------------------

    def _tl_length(self, u: int) -> int:
        """``_tl(u).length`` alone (counting statuses needs no times)."""
        h = _mix(self._k_tl + u * _GOLD)
        p = (h >> 11) * _INV53
        if p < 0.12 and u >= _SPECIAL_BELOW:
            return 0
        x2 = (_mix(h + 7) >> 11) * _INV53
        if u in _FORCED_LONG:
            return 3300 + h % 1200
        if u < _SPECIAL_BELOW:  # the famous accounts all tweet: reply/retweet targets
            return int(50 * math.exp(x2 * _LN_TL[0]))
        if p < 0.72:
            return int(math.exp(x2 * _LN_TL[1]))
        if p < 0.96:
            return int(60 * math.exp(x2 * _LN_TL[2]))
        if p < 0.996:
            return int(300 * math.exp(x2 * _LN_TL[3]))
        return int(2000 * math.exp(x2 * _LN_TL[4]))

    def _gen_tl(self, u: int) -> _Timeline:
        # _mix and _loguniform inlined (this runs once per user counted): same values
        length = self._tl_length(u)
        if not length:
            return _new_tl(_Timeline, (0, 0, 1))
        h = _mix(self._k_tl + u * _GOLD)
        h3 = _mix(h + 11)
        x4 = (_mix(h3) >> 11) * _INV53
        if u < _SPECIAL_BELOW or (h >> 20) % 100 < 85:  # active: newest tweet within the last 6 days (+ gap <= 4 days)
            off = _MIN + int((h3 >> 11) * _INV53 * 6 * _DAY)
            want_gap = int(10 * _MIN * math.exp(x4 * _LN_TL[5]))
        else:
            off = int(10 * _DAY * math.exp((h3 >> 11) * _INV53 * _LN_TL[6]))
            want_gap = int(20 * _MIN * math.exp(x4 * _LN_TL[7]))
        lo = max(self._created_ms(u) + _DAY, _T2011)
        newest = _NOW_MS - off
        if newest - lo < length * 5 * _MIN:
            newest = min(_NOW_MS - _MIN, lo + length * 5 * _MIN)
        gap = max(2, min(want_gap, (newest - lo) // length))
        newest = min(newest, _NOW_MS - gap)
        return _new_tl(_Timeline, (length, newest - (length - 1) * gap, gap))

    def _gen_tmeta(self, u: int) -> bytes:
        """8 bytes per tweet: jitter (4), deleted, kind, lang, source."""
        n = self._tl(u).length
        return hashlib.shake_128(self._bkey + b"tw" + u.to_bytes(4, "little")).digest(8 * n)

    def _time(self, u: int, s: int, tl: _Timeline, meta: bytes) -> int:
        return tl.base + s * tl.gap + int.from_bytes(meta[8 * s : 8 * s + 4], "little") % (tl.gap // 2 or 1)

    def _tid(self, u: int, s: int) -> int:
        tl = self._tl(u)
        return ((self._time(u, s, tl, self._tmeta(u)) - TWITTER_EPOCH_MS) << 22) | u

    def _gen_tuser(self, u: int) -> tuple[int, int, int, int, bytes, int, str, float]:
        """What decoding and rendering ``u``'s tweets needs, in one cache entry: (length, base,
        gap, jitter modulus, tweet meta, author id, usual source anchor, expected followers)."""
        length, base, gap = self._tl(u)
        return (length, base, gap, gap // 2 or 1, self._tmeta(u), self._id(u),
                _SOURCE_HTML[self._h(self._k_misc, u) % len(_SOURCES)], self._tier_ef[(u + 1).bit_length() - 1])

    def decode_tweet_id(self, tid: int) -> tuple[int, int] | None:
        """``(author index, sequence number)`` of a tweet id, or None if no such tweet ever existed. O(1)."""
        if not isinstance(tid, int) or isinstance(tid, bool) or tid <= 0 or tid >= 1 << 63:
            return None
        u = tid & _M22
        if u >= self.users:
            return None
        length, base, gap, half, meta = self._tuser(u)[:5]
        if length == 0:
            return None
        t = (tid >> 22) + TWITTER_EPOCH_MS
        s = (t - base) // gap
        if not 0 <= s < length or base + s * gap + int.from_bytes(meta[8 * s : 8 * s + 4], "little") % half != t:
            return None
        return u, s

    def _deleted_tweet(self, u: int, s: int) -> bool:
        return self._tmeta(u)[8 * s + 4] < _DELETED_BELOW

    def _gen_timeline_ids(self, u: int) -> tuple[int, ...]:
        if self._codes()[u] == _UNLISTED_CODE:  # suspended or deleted
            return ()
        length, base, gap = self._tl(u)
        if not length:
            return ()
        meta = self._tmeta(u)
        words = array("I")
        words.frombytes(meta)
        if _BIG_ENDIAN:
            words.byteswap()
        half = gap // 2 or 1
        base -= TWITTER_EPOCH_MS
        ids = [((t + j % half) << 22) | u
               for t, j, d in zip(range(base, base + length * gap, gap), words[0::2], meta[4::8])
               if d >= _DELETED_BELOW]
        ids.reverse()
        return tuple(ids)

    def timeline(self, uid: int) -> tuple[int, ...]:
        """All non-deleted tweet ids of ``uid``, newest first (() for unknown, suspended or deleted
        accounts; protected ones are listed). The API's 3,200 cap is not applied here.

        The tuple is the world's cached copy (immutable): slice it, don't convert it."""
        i = self.index_of(uid)
        return () if i is None else self._timeline_ids(i)

    def deleted_tweet_ids(self, uid: int) -> list[int]:
        """Ids of ``uid``'s deleted tweets, newest first (``tweet()`` returns them with ``deleted=True``)."""
        u = self.index_of(uid)
        if u is None:
            return []
        meta = self._tmeta(u)
        return [self._tid(u, s) for s in range(self._tl(u).length - 1, -1, -1) if meta[8 * s + 4] < _DELETED_BELOW]

    def reachable_timeline(self, uid: int) -> tuple[int, ...]:
        """The newest 3,200 of ``timeline(uid)``: what the timeline endpoints can reach."""
        i = self.index_of(uid)
        return () if i is None else self._timeline_ids(i)[:TIMELINE_CAP]
