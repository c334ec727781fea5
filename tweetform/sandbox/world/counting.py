"""Counting without lists: followers and friends counts from per-world tables built on first use.

See the package docstring ("Counting and lazily built tables")."""

from __future__ import annotations

from array import array
from itertools import accumulate
from operator import itemgetter as _pick

from .common import (
    _BIG_ENDIAN,
    _BULK_AFTER,
    _coin_below,
    _COIN_BLOCK,
    _int_lanes,
    _IS_CLASS,
    _lanes,
    _LISTED01,
    _N_CLASSES,
    _SLICE_BELOW,
    _u32,
    _UNLISTED_CODE,
)


class _Counting:
    """Exact follower and friend counts without building the lists. A mixin of :class:`World`."""

    # ---- counting without lists --------------------------------------------------------------

    def _followers_count(self, u: int, stop: int | None = None) -> int:
        """``len(_followers_idx(u))`` without the list: exact, or (with ``stop``) any value
        >= ``stop`` once the count reaches it."""
        codes = self._codes()
        if codes[u] == _UNLISTED_CODE:
            return 0
        t = self._tier_of(u)
        s = 1 << t
        m = s - 1
        tbl = self._fcount_tbl[t]
        if tbl is None:
            # Count one by one until that has cost about as much as a table; then build it.
            nb = -(-self.users // s)
            sliced = nb >= _SLICE_BELOW
            work = self._tier_kmax[t] * (8 if sliced else 2 + nb) + (3 * nb if sliced else 0)
            if s <= _COIN_BLOCK or self._fcount_work[t] + work > _BULK_AFTER * self.users:
                tbl = self._follower_count_table(t)
            else:
                self._fcount_work[t] += work
                cnt = self._slice_count(u, t, stop) if sliced else self._walk_count(u, t, stop)
                return cnt + len(self._special_followers(u, t))
        a, b, c, ainv, binv = self._tier_abc[t]
        j = u - m
        cnt = tbl[(-a * j) & m]
        cu = codes[u]
        if cu < _N_CLASSES:  # the table counts u itself if u's own predicate holds: take it out
            fl, thr = self._tier_fl[t], self._tier_thr[t]
            w = (a * j + b * u + c) & m
            if w < fl[cu] or (w == fl[cu] and self._coins(u)[t] < thr[cu]):
                cnt -= 1
        return cnt + len(self._special_followers(u, t))

    def _gen_tier_coins(self, t: int) -> bytes:
        """Every user's tier-``t`` coin byte, by index (rounded up to whole coin blocks)."""
        T = self._tiers
        blocks = -(-self.users // _COIN_BLOCK)
        gen = self._coin_block if blocks <= 512 else self._gen_coin_block
        return b"".join([gen(cb)[t::T] for cb in range(blocks)])

    def _follower_count_table(self, t: int) -> bytes | array:
        """Tier ``t``'s non-special follower counts for every position, indexed by ``y = -a*j mod S``.

        With ``z_v = (b*v + c) mod S``, ``v`` follows ``j`` iff ``z_v`` lies in the cyclic window
        ``[y, y + K_t(v))``. With ``h_e(z)`` = listed, non-special class-``e`` users with key
        ``z`` and ``c_e(z)`` = those whose coin adds the extra position ``fl_e``, the count at
        ``y`` is ``sum_e sum_{d < fl_e} h_e(y + d) + c_e(y + fl_e)``. Histograms are made with
        C-speed bytes operations (translate, slices, int.from_bytes) and brought to key
        order by one ``itemgetter`` permutation; every window sum is then done at once on
        ints holding one lane per position: a multiplication by ``1 + 2**W + ...`` per class
        (nested windows: class ``e`` adds the ``d`` in ``[fl_{e-1}, fl_e)`` for all classes
        >= ``e``), and one cyclic fold. Lanes are 8, 16 or 32 bits, whatever holds
        ``(max fl + 1) * ceil(users / S)``. Counts include ``u`` itself when its own
        predicate holds (the caller takes it out). Built once per tier.
        """
        tbl = self._fcount_tbl[t]
        if tbl is not None:
            return tbl
        n = self.users
        s = 1 << t
        m = s - 1
        a, b, c, ainv, binv = self._tier_abc[t]
        fl, thr = self._tier_fl[t], self._tier_thr[t]
        nb = -(-n // s)
        full = nb * s
        lmax = max(fl[:_N_CLASSES])
        bound = (lmax + 1) * nb  # no lane ever exceeds this
        wb = 1 if bound < 1 << 8 else 2 if bound < 1 << 16 else 4  # lane width in bytes
        codes = self._codes()
        if len(codes) < full:
            codes += b"\xff" * (full - len(codes))
        coins = self._tier_coins(t)
        if len(coins) < full:
            coins += b"\xff" * (full - len(coins))
        edge = [e for e in range(_N_CLASSES) if thr[e] and fl[e] < s]  # classes with a coin position
        # key z holds residue (binv * (z - c)) mod S
        start = -binv * c
        perm = [0] if s == 1 else list(map(m.__and__, range(start, start + binv * s, binv)))
        getter = _pick(*perm) if s > 1 else (lambda seq: (seq[0],))
        h = [0] * _N_CLASSES  # per class: key-ordered histogram, wb-byte lanes
        ce = [0] * _N_CLASSES
        if s >= nb and 2 * nb <= 2 * _N_CLASSES:
            # Few blocks of S users: permute the blocks, then count with byte lanes.
            for i in range(nb):
                seg = bytes(getter(codes[i * s : (i + 1) * s]))
                cseg = bytes(getter(coins[i * s : (i + 1) * s])) if edge else b""
                for e in range(_N_CLASSES):
                    x = seg.translate(_IS_CLASS[e])
                    h[e] += _lanes(x, wb)
                    if e in edge:
                        ce[e] += _lanes(x, wb) & _lanes(cseg.translate(_coin_below(thr[e])), wb)
        elif s >= nb and nb < 256:
            # More blocks: count by residue with byte lanes (counts <= nb < 256), then permute.
            hr = [0] * _N_CLASSES
            cr = [0] * _N_CLASSES
            for i in range(nb):
                seg = codes[i * s : (i + 1) * s]
                cseg = coins[i * s : (i + 1) * s]
                for e in range(_N_CLASSES):
                    x = int.from_bytes(seg.translate(_IS_CLASS[e]), "little")
                    hr[e] += x
                    if e in edge:
                        cr[e] += x & int.from_bytes(cseg.translate(_coin_below(thr[e])), "little")
            for e in range(_N_CLASSES):
                h[e] = _lanes(bytes(getter(hr[e].to_bytes(s, "little"))), wb)
                if e in edge:
                    ce[e] = _lanes(bytes(getter(cr[e].to_bytes(s, "little"))), wb)
        else:
            # Many users per residue: count each residue's slice, then permute.
            hl = [[0] * s for _ in range(_N_CLASSES)]
            cl = [[0] * s for _ in range(_N_CLASSES)]
            for rho in range(s):
                seg = codes[rho:full:s]
                for e in range(_N_CLASSES):
                    hl[e][rho] = seg.count(e)
                if edge:
                    cseg = coins[rho:full:s]
                    for e in edge:
                        cl[e][rho] = (int.from_bytes(seg.translate(_IS_CLASS[e]), "little")
                                      & int.from_bytes(cseg.translate(_coin_below(thr[e])), "little")).bit_count()
            for e in range(_N_CLASSES):
                h[e] = _int_lanes(getter(hl[e]), wb)
                if e in edge:
                    ce[e] = _int_lanes(getter(cl[e]), wb)
        # Windows: classes by fl ascending (it grows with the activity factor).
        W = 8 * wb
        order = sorted(range(_N_CLASSES), key=lambda e: fl[e])
        suffix = [0] * (len(order) + 1)  # suffix[k]: users of the classes order[k:]
        for k in range(len(order) - 1, -1, -1):
            suffix[k] = suffix[k + 1] + h[order[k]]
        x = 0
        prev = 0
        for k, e in enumerate(order):
            q = fl[e]
            if q > prev and suffix[k]:
                # sum_{d=prev..q-1} G(y + d) sits at lane y + q - 1 of G * (1 + 2**W + ... ); align to y + lmax
                ones = ((1 << (W * (q - prev))) - 1) // ((1 << W) - 1)
                x += (suffix[k] * ones) << (W * (lmax - q + 1))
            prev = max(prev, q)
            if e in edge and ce[e]:
                x += ce[e] << (W * (lmax - q))
        # fold: position y = lane y + lmax plus lane y + lmax - S
        low = W * lmax
        x = (x >> low) + ((x & ((1 << low) - 1)) << (W * (s - lmax)))
        raw = x.to_bytes(wb * s, "little")
        if wb == 1:
            tbl = raw
        else:
            tbl = array("H" if wb == 2 else "I")
            tbl.frombytes(raw)
            if _BIG_ENDIAN:
                tbl.byteswap()
        self._fcount_tbl[t] = tbl
        return tbl

    def _friend_prefix(self, t: int) -> array:
        """Prefix sums over ``q`` of [index ``m + (ainv*q mod S)`` is listed]: ``v``'s friends in tier
        ``t`` are the ``q`` in the cyclic window ``[-(b*v + c) mod S, ... + K_t(v))``."""
        pref = self._friend_pref[t]
        if pref is None:
            s = 1 << t
            m = s - 1
            ainv = self._tier_abc[t][3]
            listed = self._codes()[m : m + s].translate(_LISTED01)
            seq = listed if s == 1 else _pick(*map(m.__and__, range(0, ainv * s, ainv)))(listed)
            pref = _u32(accumulate(seq, initial=0))
            self._friend_pref[t] = pref
        return pref

    def _friends_count(self, v: int) -> int:
        """``len(_friends_idx(v))``: one window sum per tier from prefix sums, O(tiers), once
        enough users have been counted to pay for the prefix arrays (O(users)); until then
        the friend positions are tested one by one, without building the list."""
        codes = self._codes()
        if codes[v] == _UNLISTED_CODE:
            return 0
        coins = self._coins(v)
        cls = self._act_class(v)
        rows = self._friend_count_rows[cls]
        if rows is None:
            if self._friend_work < _BULK_AFTER * (1 << self._tiers):
                cnt = 0
                for t, (fl, thr, (a, b, c, ainv, binv)) in enumerate(zip(self._tier_fl, self._tier_thr, self._tier_abc)):
                    k = fl[cls] + (coins[t] < thr[cls])
                    if k:
                        m = (1 << t) - 1
                        off = b * v + c
                        cnt += sum([codes[m + ((ainv * (w - off)) & m)] != _UNLISTED_CODE for w in range(k)])
                        self._friend_work += k
                # the loop counted v itself if v's own position is in its window
                t = self._tier_of(v)
                m = (1 << t) - 1
                a, b, c, _, _ = self._tier_abc[t]
                return cnt - (((a * (v - m) + b * v + c) & m) < self._tier_fl[t][cls] + (coins[t] < self._tier_thr[t][cls]))
            rows = self._build_friend_count_rows(cls)
        cnt = 0
        for t, f, th, s, m, nb, nc, pref in rows:
            if f:
                lo = (nb * v + nc) & m
                hi = lo + f + (coins[t] < th)
                cnt += pref[hi] - pref[lo] if hi <= s else pref[s] - pref[lo] + pref[hi - s]
            elif coins[t] < th:  # a window of one position
                lo = (nb * v + nc) & m
                cnt += pref[lo + 1] - pref[lo]
        # v's own position in its tier is in the window iff v's predicate holds for itself
        t = self._tier_of(v)
        m = (1 << t) - 1
        a, b, c, _, _ = self._tier_abc[t]
        if ((a * (v - m) + b * v + c) & m) < self._tier_fl[t][cls] + (coins[t] < self._tier_thr[t][cls]):
            cnt -= 1
        return cnt

    def _build_friend_count_rows(self, cls: int) -> tuple[tuple[int, int, int, int, int, int, int, array], ...]:
        """_friends_count's loop rows for activity class ``cls``: the tiers where it can have friends."""
        rows = tuple((t, fl[cls], thr[cls], 1 << t, (1 << t) - 1, -abc[1], -abc[2], self._friend_prefix(t))
                     for t, (fl, thr, abc) in enumerate(zip(self._tier_fl, self._tier_thr, self._tier_abc))
                     if fl[cls] or thr[cls])
        self._friend_count_rows[cls] = rows
        return rows
