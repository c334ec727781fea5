"""The follow graph: tiers, friends and followers lists (exact inverses), BFS reach.

See the package docstring ("Follow graph") for the construction."""

from __future__ import annotations

from array import array
from bisect import bisect_left
from itertools import compress
from typing import Literal

from .common import (
    bfs_expansion,
    _ACT_CLASSES,
    ALPHA,
    _CLASS_OF,
    _coin_below,
    _COIN_BLOCK,
    _FORCED_HEAVY,
    _HEAVY_ACTS,
    _ID_TABLE_MAX,
    _IS_CLASS,
    _N_CLASSES,
    NORMAL,
    Q0,
    _SLICE_BELOW,
    _SPECIAL_BELOW,
    _SPECIAL_CODE,
    _T2016,
    _T2024,
    TWITTER_EPOCH_MS,
    _UCS_BLOCK,
    _UNLISTED_CODE,
    _UNLISTED_OR,
)


class _Graph:
    """Friends and followers lists. A mixin of :class:`World`."""

    # ---- follow graph ---------------------------------------------------------------------

    def _build_tiers(self) -> None:
        """Per-tier constants: the bijection coefficients and K thresholds per activity class."""
        self._tier_abc: list[tuple[int, int, int, int, int]] = []
        self._tier_fl: list[tuple[int, ...]] = []  # per class: floor part of K (capped at S)
        self._tier_thr: list[tuple[int, ...]] = []  # per class: coin threshold out of 256
        self._tier_kmax: list[int] = []  # max K over normal (non-heavy) classes
        acts = [a for a, _ in _ACT_CLASSES] + list(_HEAVY_ACTS)
        for t in range(self._tiers):
            s = 1 << t
            h = self._h(self._k_graph, t + 1)
            a = (h | 1) & (s - 1) if s > 1 else 0  # odd: invertible mod S
            b = ((h >> 24) | 1) & (s - 1) if s > 1 else 0
            c = (h >> 48) & (s - 1)
            ainv = pow(a, -1, s) if s > 1 else 0
            binv = pow(b, -1, s) if s > 1 else 0
            self._tier_abc.append((a, b, c, ainv, binv))
            fls, thrs = [], []
            for act in acts:
                x = Q0 * act * 2.0 ** ((1.0 - ALPHA) * t)
                if x >= s:
                    fls.append(s)
                    thrs.append(0)
                else:
                    fl = int(x)
                    fls.append(fl)
                    thrs.append(round((x - fl) * 256))
            self._tier_fl.append(tuple(fls))
            self._tier_thr.append(tuple(thrs))
            n = len(_ACT_CLASSES)
            self._tier_kmax.append(min(s, max(fls[k] + (thrs[k] > 0) for k in range(n))))
        # per activity class (heavy ones too): _friends_count's rows, built on first use
        self._friend_count_rows: list[tuple[tuple[int, int, int, int, int, int, int, array], ...] | None] = (
            [None] * len(acts))

    def _is_heavy(self, v: int) -> bool:
        if v < _SPECIAL_BELOW:
            return v in _FORCED_HEAVY
        return (v & (self._heavy_p - 1)) == self._heavy_r

    def _act_class(self, v: int) -> int:
        if v < _SPECIAL_BELOW:
            if v in _FORCED_HEAVY:
                return len(_ACT_CLASSES) + _FORCED_HEAVY[v]
        elif (v & (self._heavy_p - 1)) == self._heavy_r:
            return len(_ACT_CLASSES) + (self._class_byte(v) & 3)
        return _CLASS_OF[self._class_byte(v)]

    def _k(self, t: int, v: int, cls: int, coin: int) -> int:
        return self._tier_fl[t][cls] + (coin < self._tier_thr[t][cls])

    def _coins(self, v: int) -> bytes:
        T = self._tiers
        off = (v & (_COIN_BLOCK - 1)) * T
        return self._coin_block(v >> 8)[off : off + T]

    def _special_indices(self) -> list[int]:
        """Indices < 64 and heavy followers: the "specials" the reverse direction handles apart."""
        n, p = self.users, self._heavy_p
        first = self._heavy_r + p * max(0, -(-(_SPECIAL_BELOW - self._heavy_r) // p))
        return [*range(min(_SPECIAL_BELOW, n)), *range(first, n, p)]

    def _codes(self) -> bytes:
        """One code byte per index (see ``_SPECIAL_CODE``), padded with ``_UNLISTED_CODE`` to ``2**tiers``."""
        codes = self._codes_arr
        if codes is None:
            n = self.users
            out = bytearray(b"\xff") * (1 << self._tiers)
            blocks = -(-n // _UCS_BLOCK)
            gen = self._ucs_block if blocks <= 1024 else self._gen_ucs_block
            for blk in range(blocks):
                ub = gen(blk)
                # class (0..5) OR 0xFF for unlisted users, one byte lane per user
                code = (int.from_bytes(ub[0::2].translate(_CLASS_OF), "little")
                        | int.from_bytes(ub[1::2].translate(_UNLISTED_OR), "little")).to_bytes(_UCS_BLOCK, "little")
                lo = blk * _UCS_BLOCK
                hi = min(n, lo + _UCS_BLOCK)
                out[lo:hi] = code[: hi - lo]
            for v in self._special_indices():
                out[v] = _SPECIAL_CODE if self._listed(v) else _UNLISTED_CODE
            self._codes_arr = codes = bytes(out)
        return codes

    def _gen_friends_idx(self, v: int) -> tuple[int, ...]:
        """Indices ``v`` follows (listed ones only), descending. Empty if ``v`` is not listed."""
        if not self._listed(v):
            return ()
        cls = self._act_class(v)
        coins = self._coins(v)
        codes = self._codes()  # padded: indices >= users read as unlisted
        out: list[int] = []
        for t in range(self._tiers):
            k = self._tier_fl[t][cls] + (coins[t] < self._tier_thr[t][cls])
            if not k:
                continue
            m = (1 << t) - 1
            a, b, c, ainv, binv = self._tier_abc[t]
            off = b * v + c
            for w in range(k):
                idx = m + ((ainv * (w - off)) & m)
                if codes[idx] != _UNLISTED_CODE and idx != v:
                    out.append(idx)
        out.sort(reverse=True)
        return tuple(out)

    def _follows(self, v: int, u: int) -> bool:
        """Whether index ``v`` follows index ``u``, in O(1): ``_gen_friends_idx``'s predicate for one ``u``."""
        codes = self._codes()
        if u == v or codes[v] == _UNLISTED_CODE or codes[u] == _UNLISTED_CODE:
            return False
        t = (u + 1).bit_length() - 1
        m = (1 << t) - 1
        a, b, c, _, _ = self._tier_abc[t]
        cls = self._act_class(v)
        k = self._tier_fl[t][cls] + (self._coins(v)[t] < self._tier_thr[t][cls])
        return ((a * (u - m) + b * v + c) & m) < k

    def _friend_slots(self, v: int) -> int:
        """``sum K_t(v)``: index ``v``'s friend positions, listed or not (``_friend_at``'s range)."""
        cls = self._act_class(v)
        coins = self._coins(v)
        return sum(fl[cls] + (coin < thr[cls]) for fl, thr, coin in zip(self._tier_fl, self._tier_thr, coins))

    def _friend_at(self, v: int, r: int) -> int | None:
        """The ``r``-th friend position of index ``v`` (tiers in order, ``0 <= r < sum K``): an index,
        or None when ``r`` is past the last or lands on an unlisted account. O(tiers), no list."""
        cls = self._act_class(v)
        coins = self._coins(v)
        for t in range(self._tiers):
            k = self._tier_fl[t][cls] + (coins[t] < self._tier_thr[t][cls])
            if r < k:
                m = (1 << t) - 1
                a, b, c, ainv, _ = self._tier_abc[t]
                idx = m + ((ainv * (r - (b * v + c))) & m)
                return idx if idx != v and self._codes()[idx] != _UNLISTED_CODE else None
            r -= k
        return None

    def _gen_friends_ids(self, v: int) -> tuple[int, ...]:
        return self._ids(self._friends_idx(v))

    def _ids(self, idx: list[int] | tuple[int, ...]) -> tuple[int, ...]:
        """``tuple(map(self._id, idx))``; long lists read the id table instead."""
        if len(idx) < 256 or self.users > _ID_TABLE_MAX:
            return tuple(map(self._id, idx))
        table = self._id_table or self._build_id_table()
        return tuple(map(table.__getitem__, idx))

    def _build_id_table(self) -> array:
        """Every user's id by index (8 bytes a user), one list comprehension per id family."""
        n, k = self.users, self._k_id
        ss, ms = self._small_step, self._mid_step
        table = array("q", bytes(8 * n))
        table[0::3] = array("q", [12 + q * ss + (q * 2654435761 + k) % ss for q in range((n + 2) // 3)])
        table[0] = 12  # q == 0: no jitter
        table[1::3] = array("q", [1_000_000_000 + q * ms + (q * 40503 + k) % ms for q in range((n + 1) // 3)])
        lo, span = _T2016 - TWITTER_EPOCH_MS, _T2024 - _T2016
        table[2::3] = array("q", [((lo + (i * 0x9E3779B1 + k) % span) << 22) | i for i in range(2, n, 3)])
        self._id_table = table
        return table

    def _followers_idx(self, u: int) -> list[int]:
        """Indices following ``u`` (listed only), descending. Not cached: see ``_followers_ids``."""
        if not self._listed(u):
            return []
        t = self._tier_of(u)
        s = 1 << t
        if self.users >= _SLICE_BELOW * s:
            out = self._slice_followers(u, t)  # many candidates per residue
        else:
            out = self._walk_followers(u, t)  # a few: test them one by one
        out += self._special_followers(u, t)
        out.sort(reverse=True)
        return out

    def _slice_followers(self, u: int, t: int) -> list[int]:
        """Non-special followers of ``u`` (tier ``t``), for tiers with many users per residue:
        per ``w``, the residue class is one stride-``S`` slice of the code (and coin) arrays,
        tested with translate() and picked out with ``compress``."""
        s = 1 << t
        m = s - 1
        a, b, c, ainv, binv = self._tier_abc[t]
        r = (a * (u - m) + c) & m
        codes = self._codes()
        # Coins decide one w per class: read from the tier's coin array where the
        # candidates are many (small tiers), else one coin block lookup each.
        coins = self._tier_coins(t) if s <= _COIN_BLOCK else None
        coin_block, T = self._coin_block, self._tiers
        fl, thr = self._tier_fl[t], self._tier_thr[t]
        out: list[int] = []
        for w in range(self._tier_kmax[t]):
            res = (binv * (w - r)) & m
            cs = codes[res::s]  # candidates res, res + S, ...; padding reads as unlisted
            cands = range(res, res + s * len(cs), s)
            hit = int.from_bytes(cs.translate(self._slice_tables(t)[w]), "little")
            for e in range(_N_CLASSES):
                if fl[e] == w and thr[e]:  # class e follows iff its coin < thr
                    if coins is not None:
                        hit |= (int.from_bytes(cs.translate(_IS_CLASS[e]), "little")
                                & int.from_bytes(coins[res::s].translate(_coin_below(thr[e])), "little"))
                    else:
                        out += [v for v in compress(cands, cs.translate(_IS_CLASS[e]))
                                if coin_block(v >> 8)[(v & 255) * T + t] < thr[e]]
            if hit:
                out += compress(cands, hit.to_bytes(len(cs), "little"))
        if u in out:
            out.remove(u)
        return out

    def _slice_count(self, u: int, t: int, stop: int | None = None) -> int:
        """``len(_slice_followers(u, t))`` without the list; returns early once ``stop`` is reached."""
        s = 1 << t
        m = s - 1
        a, b, c, ainv, binv = self._tier_abc[t]
        r = (a * (u - m) + c) & m
        codes = self._codes()
        coins = self._tier_coins(t) if s <= _COIN_BLOCK else None
        coin_block, T = self._coin_block, self._tiers
        fl, thr = self._tier_fl[t], self._tier_thr[t]
        yes = self._slice_tables(t)
        cnt = 0
        for w in range(self._tier_kmax[t]):
            res = (binv * (w - r)) & m
            cs = codes[res::s]
            cnt += cs.translate(yes[w]).count(1)
            for e in range(_N_CLASSES):
                if fl[e] == w and thr[e]:
                    if coins is not None:
                        cnt += (int.from_bytes(cs.translate(_IS_CLASS[e]), "little")
                                & int.from_bytes(coins[res::s].translate(_coin_below(thr[e])), "little")).bit_count()
                    else:
                        cnt += sum([coin_block(v >> 8)[(v & 255) * T + t] < thr[e]
                                    for v in compress(range(res, res + s * len(cs), s), cs.translate(_IS_CLASS[e]))])
            if stop is not None and cnt > stop:
                break  # (u itself may be among them: one more than stop is enough)
        cu = codes[u]
        if cu < _N_CLASSES:  # the slices counted u itself if u's own predicate holds
            w = (a * (u - m) + b * u + c) & m
            if w < fl[cu] or (w == fl[cu] and coin_block(u >> 8)[(u & 255) * T + t] < thr[cu]):
                cnt -= 1
        return cnt

    def _slice_tables(self, t: int) -> tuple[bytes, ...]:
        """Per ``w < Kmax_t``: code -> 1 if the class follows position ``w`` regardless of its coin."""
        tbls = self._slice_tbls[t]
        if tbls is None:
            tbls = tuple(bytes(int(x == 2) for x in row) for row in self._walk_tables(t))
            self._slice_tbls[t] = tbls
        return tbls

    def _walk_tables(self, t: int) -> tuple[bytes, ...]:
        """Per ``w < Kmax_t``: code -> 2 (follows), 1 (follows iff its tier-``t`` coin < thr), 0 (not)."""
        tbls = self._walk_tbls[t]
        if tbls is None:
            fl, thr = self._tier_fl[t], self._tier_thr[t]
            rows = []
            for w in range(self._tier_kmax[t]):
                row = bytearray(256)
                for e in range(_N_CLASSES):
                    row[e] = 2 if fl[e] > w else 1 if fl[e] == w and thr[e] else 0
                rows.append(bytes(row))
            self._walk_tbls[t] = tbls = tuple(rows)
        return tbls

    def _walk_followers(self, u: int, t: int) -> list[int]:
        """Non-special followers of ``u`` (tier ``t``): walk the residue class of each ``w < Kmax_t``."""
        n = self.users
        s = 1 << t
        m = s - 1
        a, b, c, ainv, binv = self._tier_abc[t]
        r = (a * (u - m) + c) & m
        codes = self._codes()
        thr = self._tier_thr[t]
        T = self._tiers
        coin_block = self._coin_block
        out: list[int] = []
        for w, tb in enumerate(self._walk_tables(t)):
            for v in range((binv * (w - r)) & m, n, s):
                x = tb[codes[v]]
                if x and v != u and (x == 2 or coin_block(v >> 8)[(v & 255) * T + t] < thr[codes[v]]):
                    out.append(v)
        return out

    def _walk_count(self, u: int, t: int, stop: int | None = None) -> int:
        """``len(_walk_followers(u, t))`` without building the list; returns early once ``stop`` is reached."""
        n = self.users
        s = 1 << t
        m = s - 1
        a, b, c, ainv, binv = self._tier_abc[t]
        r = (a * (u - m) + c) & m
        codes = self._codes()
        thr = self._tier_thr[t]
        T = self._tiers
        coin_block = self._coin_block
        cnt = 0
        for w, tb in enumerate(self._walk_tables(t)):
            for v in range((binv * (w - r)) & m, n, s):
                x = tb[codes[v]]
                if x and v != u and (x == 2 or coin_block(v >> 8)[(v & 255) * T + t] < thr[codes[v]]):
                    cnt += 1
            if stop is not None and cnt >= stop:
                break
        return cnt

    def _specials(self) -> tuple[tuple[int, int, bytes], ...]:
        """Listed specials (<= ~320) as ``(index, activity class, coins)``."""
        if self._special_list is None:
            self._special_list = tuple(
                (v, self._act_class(v), self._coins(v)) for v in self._special_indices() if self._listed(v)
            )
        return self._special_list

    def _tier_specials(self, t: int) -> tuple[tuple[int, ...], tuple[tuple[int, int, int], ...], int]:
        """Tier ``t``'s specials with ``K_t(v) > 0`` as ``(g, v, K)`` sorted by ``g = (b*v + c) mod S``
        (their keys alone, then the rows, then the largest ``K``)."""
        sp = self._spec_tiers[t]
        if sp is None:
            m = (1 << t) - 1
            a, b, c, ainv, binv = self._tier_abc[t]
            fl, thr = self._tier_fl[t], self._tier_thr[t]
            rows = []
            for v, cls, coins in self._specials():
                k = fl[cls] + (coins[t] < thr[cls])
                if k:
                    rows.append(((b * v + c) & m, v, k))
            rows.sort()
            sp = (tuple(g for g, _, _ in rows), tuple(rows), max((k for _, _, k in rows), default=0))
            self._spec_tiers[t] = sp
        return sp

    def _special_followers(self, u: int, t: int) -> list[int]:
        """Special users following ``u`` (tier ``t``).

        ``v`` follows position ``j`` iff ``(a*j + g_v) mod S < K``, i.e. ``g_v`` lies in the
        cyclic window ``[y, y + K)`` with ``y = -a*j mod S``: bisect for ``[y, y + max K)``.
        """
        gs, rows, kmax = self._spec_tiers[t] or self._tier_specials(t)
        s = 1 << t
        m = s - 1
        y = (-self._tier_abc[t][0] * (u - m)) & m
        if 4 * kmax >= s:
            cand = rows
        else:
            end = y + kmax
            cand = rows[bisect_left(gs, y) : bisect_left(gs, end)]
            if end > s:
                cand += rows[: bisect_left(gs, end - s)]
        return [v for g, v, k in cand if ((g - y) & m) < k and v != u]

    def _gen_followers_ids(self, u: int) -> tuple[int, ...]:
        return self._ids(self._followers_idx(u))

    def following(self, uid: int) -> tuple[int, ...]:
        """Ids ``uid`` follows, excluding suspended/deleted accounts; () for unknown,
        suspended or deleted ``uid``. Order: descending user index (fixed).

        The tuple is the world's cached copy (immutable): slice it, don't convert it."""
        i = self.index_of(uid)
        return () if i is None else self._friends_ids(i)

    def followers(self, uid: int) -> tuple[int, ...]:
        """Ids following ``uid``; exact inverse of ``following``. Same conventions."""
        i = self.index_of(uid)
        return () if i is None else self._followers_ids(i)

    def reachable(
        self,
        seed_ids: list[int],
        depth: int,
        direction: Literal["friends", "followers"] = "friends",
        max_users: int | None = None,
    ) -> list[int]:
        """Users a tweetf0rm-style crawl expands (fetches the list of), in BFS order.

        depth 1 = the seeds only, 2 = also every id in their lists, and so on.
        Seeds are taken in order without duplicates; each user is expanded
        once; a user's list members are queued in list order. Every seed is
        expanded (counted) even if unknown, suspended or deleted (its list is
        empty); a protected user is expanded but contributes nothing (its list
        cannot be fetched); suspended/deleted users never appear in lists.
        ``max_users`` keeps exactly the first ``max_users`` entries of the
        unlimited BFS order (expansion stops there).
        """
        lists = self._friends_ids if direction == "friends" else self._followers_ids

        def list_of(uid: int) -> tuple[int, ...] | None:
            i = self.index_of(uid)
            return None if i is None or self._state(i) != NORMAL else lists(i)

        return bfs_expansion(seed_ids, depth, direction, max_users, list_of)
