"""Engagement: who replied to, quoted, retweeted and liked each tweet (and what each user liked).

The engaging side is the search corpus (visible users with index < ``search_users``,
their non-deleted tweets), so everything here agrees with search: a tweet's replies
are the corpus's replies to it, found by ``conversation_id:`` search too.

* Replies, quotes and retweets are the corpus's own tweets that reference another
  (``_gen_ref``): nothing new is drawn, the forward references are inverted.
* Cascades: a corpus reply or quote *follows the cascade* (:meth:`_Engagement._chain`): by a
  hashed draw it walks 0-3 steps down from the tweet ``_gen_ref`` gave it, each step to an
  earlier reply or quote of the current one by someone else (final targets, in time order),
  and reacts to where it stops. So replies and quotes are quoted, quotes of quotes are quoted,
  and a seed's cascade is three levels of posts deep (more reactions, not more tweets: the
  walk only moves them down). Some of these quotes also reply to a friend's newest tweet
  (``also_replies``): a quote in another conversation, as the API has them.
* Likes are drawn per corpus tweet slot ``(u, s)`` of the last 30 days: 0-2 likes by ``u`` at that
  tweet's time, each of the newest earlier tweet of a friend or a famous account
  (the same choice as a reference, another hash), never ``u``'s own.

A tweet's ``public_metrics`` are these lists' lengths (retweeters and likers are
distinct users). The index is built on first use in one pass over the corpus
(O(corpus tweets), ~0.5 s for 2,000 users) and kept; the evolving world adds its
generations' engagement on top (:mod:`.evolution`).
"""

from __future__ import annotations

from typing import NamedTuple

from .common import (
    _DAY,
    _DELETED_BELOW,
    _GOLD,
    _KIND_OF,
    _mix,
    NORMAL,
    ORIGINAL,
    QUOTE,
    RECENT_DAYS,
    REPLY,
    RETWEET,
    _SPECIAL_BELOW,
    TWITTER_EPOCH_MS,
)

#: likes are drawn for the corpus's tweets of the last LIKE_DAYS days (bounds the build's cost)
LIKE_DAYS = 30
#: likes a corpus tweet slot brings, by a hashed byte's low 3 bits (mean 0.5)
_LIKES_PER_SLOT = (0, 0, 0, 0, 0, 1, 1, 2)
_LIKE_KEY = 0x11CE5EED
#: kind byte -> 1 if the tweet kind references another (reply, retweet, quote)
_REFERS = bytes(int(k != ORIGINAL) for k in _KIND_OF)
#: kind byte -> 1 for a reply or a quote (the reactions that follow a cascade)
_REACTS = bytes(int(k in (REPLY, QUOTE)) for k in _KIND_OF)
#: steps a reply or quote walks down the cascade, by a hashed byte's low 3 bits (mean 0.875)
_CHAIN_STEPS = (0, 0, 0, 0, 1, 1, 2, 3)
_CHAIN_KEY = 0xCA5CADE
#: a quote that walked also replies to a friend's newest tweet when a hashed 3 bits are below this (3 in 8)
_ALSO_REPLIES_BELOW = 3


class Chain(NamedTuple):
    """The corpus's reactions moved down their cascade: ``(u, s) -> (v, ts)`` targets that differ
    from ``_gen_ref``'s, and quotes that also reply ``(u, s) -> (v, ts)``."""

    targets: dict[tuple[int, int], tuple[int, int]]
    also_replies: dict[tuple[int, int], tuple[int, int]]


class Metrics(NamedTuple):
    retweets: int
    likes: int
    replies: int
    quotes: int


_NONE = Metrics(0, 0, 0, 0)


class EngagementIndex:
    """The inverted references and the likes of one world's corpus (lists newest first)."""

    def __init__(self) -> None:
        self.replies: dict[int, list[int]] = {}  # tweet id -> reply ids
        self.quotes: dict[int, list[int]] = {}  # tweet id -> quote tweet ids
        self.retweets: dict[int, list[tuple[int, int]]] = {}  # tweet id -> (retweet id, retweeter id)
        self.likes: dict[int, list[tuple[int, int]]] = {}  # tweet id -> (like ms, liker id)
        self.liked: dict[int, list[tuple[int, int]]] = {}  # user id -> (like ms, tweet id)

    def finish(self) -> None:
        """Newest first, each retweeter and liker once (its newest), each liked tweet once."""
        for table in (self.replies, self.quotes):
            for lst in table.values():
                lst.sort(reverse=True)
        for table in (self.retweets, self.likes, self.liked):  # type: ignore[assignment]
            for key, lst in table.items():
                lst.sort(reverse=True)
                seen: set[int] = set()
                table[key] = [x for x in lst if not (x[1] in seen or seen.add(x[1]))]  # type: ignore[func-returns-value]

    def metrics(self, tid: int) -> Metrics:
        rts, likes, replies, quotes = self.retweets.get(tid), self.likes.get(tid), self.replies.get(tid), self.quotes.get(tid)
        if not (rts or likes or replies or quotes):
            return _NONE
        return Metrics(len(rts or ()), len(likes or ()), len(replies or ()), len(quotes or ()))


class _Engagement:
    """Replies, quotes, retweets and likes, inverted. A mixin of :class:`World`."""

    def _engagement(self) -> EngagementIndex:
        idx = self._engagement_idx
        if idx is None:
            with self._index_lock:
                idx = self._engagement_idx
                if idx is None:
                    idx = self._engagement_idx = self._build_engagement()
        return idx

    def _chain(self) -> Chain:
        chain = self._chain_table
        if chain is None:
            with self._chain_lock:  # not _index_lock: the search index's build reads references
                chain = self._chain_table
                if chain is None:
                    chain = self._chain_table = self._build_chain()
        return chain

    def _chained_ref(self, u: int, s: int) -> tuple[int, int] | None:
        """What tweet ``(u, s)`` replies to, quotes or retweets: ``_gen_ref``'s target, or for a
        corpus reply or quote the one it walked down to (:meth:`_chain`)."""
        ref = self._ref0(u, s)
        if ref is None or u >= self.search_users or self._kind_byte(u, s) not in (REPLY, QUOTE):
            return ref
        return self._chain().targets.get((u, s), ref)

    def also_replies_to(self, u: int, s: int) -> tuple[int, int] | None:
        """The tweet a quote ``(u, s)`` also replies to (None: a plain quote)."""
        if u >= self.search_users or self._kind_byte(u, s) != QUOTE:
            return None
        return self._chain().also_replies.get((u, s))

    def _build_chain(self) -> Chain:
        """Every corpus reply and quote in time order walks down from ``_gen_ref``'s target: at each
        step to a hashed one of the current tweet's replies and quotes so far (final targets, by
        others than its author); the walks use only earlier tweets, so one pass in time order is exact."""
        found: list[tuple[int, int, int, tuple[int, int]]] = []
        for u in range(min(self.search_users, self.users)):
            if self._state(u) != NORMAL:
                continue
            length, base, gap, half, meta = self._tuser(u)[:5]
            marks = meta[5::8].translate(_REACTS)
            s = marks.find(1)
            while s >= 0:
                o = 8 * s
                if meta[o + 4] >= _DELETED_BELOW:
                    ref = self._ref0(u, s)
                    if ref is not None:
                        found.append((base + s * gap + int.from_bytes(meta[o : o + 4], "little") % half, u, s, ref))
                s = marks.find(1, s + 1)
        found.sort()
        key = _mix(self._k_misc + _CHAIN_KEY)
        below: dict[tuple[int, int], list[tuple[int, int]]] = {}
        targets: dict[tuple[int, int], tuple[int, int]] = {}
        also: dict[tuple[int, int], tuple[int, int]] = {}
        for t_ms, u, s, ref in found:
            h = _mix(key + ((u << 13) | s) * _GOLD)
            cur = ref
            for i in range(_CHAIN_STEPS[h & 7]):
                options = [r for r in below.get(cur, ()) if r[0] != u]
                if not options:
                    break
                cur = options[(h >> (8 + 10 * i)) % len(options)]
            if cur != ref:
                targets[(u, s)] = cur
                if (h >> 40) & 7 < _ALSO_REPLIES_BELOW and self._kind_byte(u, s) == QUOTE:
                    other = self._reply_of_quote(u, t_ms, h >> 43, cur)
                    if other is not None:
                        also[(u, s)] = other
            below.setdefault(cur, []).append((u, s))
        return Chain(targets, also)

    def _reply_of_quote(self, u: int, t_ms: int, h: int, quoted: tuple[int, int]) -> tuple[int, int] | None:
        """A friend's (not a famous account's: small threads) newest tweet before ``t_ms``, not a
        retweet, not ``quoted``: what a quote also replies to."""
        friends = self._friends_idx(u)
        if not friends:
            return None
        v = friends[h % len(friends)]
        if v == u or v < _SPECIAL_BELOW or self._state(v) != NORMAL:
            return None
        ts = self._seq_before(v, t_ms)
        if ts is None or self._kind_byte(v, ts) == RETWEET or (v, ts) == quoted:
            return None
        return v, ts

    def _like_target(self, u: int, t_ms: int, h: int) -> tuple[int, int] | None:
        """The tweet (index, seq) a like by ``u`` at ``t_ms`` is of: as ``_gen_ref`` picks a target."""
        friends = self._friends_idx(u)
        for v in (friends[h % len(friends)] if friends else -1, (h >> 32) % min(self.users, _SPECIAL_BELOW)):
            if v < 0 or v == u or self._state(v) != NORMAL:
                continue
            ts = self._seq_before(v, t_ms)
            if ts is None:
                continue
            if self._kind_byte(v, ts) == RETWEET:  # a like of a retweet is a like of the original
                orig = self._ref(v, ts)
                if orig is None or orig[0] == u:
                    continue
                return orig
            return v, ts
        return None

    def _build_engagement(self) -> EngagementIndex:
        idx = EngagementIndex()
        replies, quotes, retweets, likes, liked = idx.replies, idx.quotes, idx.retweets, idx.likes, idx.liked
        tid_of, ref_of, kind_of = self._tid, self._ref, self._kind_byte
        key = _mix(self._k_misc + _LIKE_KEY)
        like_from = self.now_ms - LIKE_DAYS * _DAY
        for u in range(min(self.search_users, self.users)):
            if self._state(u) != NORMAL:
                continue
            length, base, gap, half, meta, uid = self._tuser(u)[:6]
            if not length:
                continue
            # references: only the non-original slots (found with C-speed bytes operations)
            marks = meta[5::8].translate(_REFERS)
            s = marks.find(1)
            while s >= 0:
                o = 8 * s
                if meta[o + 4] >= _DELETED_BELOW:
                    ref = ref_of(u, s)
                    if ref is not None:
                        t_ms = base + s * gap + int.from_bytes(meta[o : o + 4], "little") % half
                        tid = ((t_ms - TWITTER_EPOCH_MS) << 22) | u
                        target = tid_of(*ref)
                        kind = kind_of(u, s)
                        if kind == REPLY:
                            replies.setdefault(target, []).append(tid)
                        elif kind == QUOTE:
                            quotes.setdefault(target, []).append(tid)
                            other = self.also_replies_to(u, s)
                            if other is not None:
                                replies.setdefault(tid_of(*other), []).append(tid)
                        else:
                            retweets.setdefault(target, []).append((tid, uid))
                s = marks.find(1, s + 1)
            # likes: the slots of the last LIKE_DAYS days
            mine: list[tuple[int, int]] = []
            for s in range(max(0, (like_from - base) // gap), length):
                o = 8 * s
                if meta[o + 4] < _DELETED_BELOW:
                    continue
                h = _mix(key + ((u << 13) | s) * _GOLD)
                n = _LIKES_PER_SLOT[h & 7]
                if not n:
                    continue
                t_ms = base + s * gap + int.from_bytes(meta[o : o + 4], "little") % half
                for i in range(n):
                    ref = self._like_target(u, t_ms, _mix(h + i))
                    if ref is not None:
                        target = tid_of(*ref)
                        likes.setdefault(target, []).append((t_ms, uid))
                        mine.append((t_ms, target))
            if mine:
                liked[uid] = mine
        idx.finish()
        return idx

    # ---- the lists the endpoints and the ground truth answer with (newest first) -------------

    def quote_ids(self, tid: int) -> list[int]:
        return self._engagement().quotes.get(tid, [])

    def reply_ids(self, tid: int) -> list[int]:
        return self._engagement().replies.get(tid, [])

    def retweeter_ids(self, tid: int) -> list[int]:
        return [uid for _, uid in self._engagement().retweets.get(tid, ())]

    def liker_ids(self, tid: int) -> list[int]:
        return [uid for _, uid in self._engagement().likes.get(tid, ())]

    def likes_of(self, tid: int) -> list[tuple[int, int]]:
        """``(like ms, liker id)`` of ``tid``'s likes, newest first (a like's own time: Bluesky's getLikes)."""
        return list(self._engagement().likes.get(tid, ()))

    def liked_ids(self, uid: int) -> list[int]:
        return [tid for _, tid in self._engagement().liked.get(uid, ())]

    def metrics(self, tid: int) -> Metrics:
        return self._engagement().metrics(tid)

    def mention_ids(self, uid: int) -> list[int]:
        """Tweets mentioning ``uid`` (replies to it, retweets of it, ``cc @name``), newest first: the
        corpus's, as search finds them (``@name`` over the full archive)."""
        user = self.user(uid)
        return [] if user is None else self.search("@" + user.screen_name, archive=True)

    def engaged_ids(self, uid: int) -> list[int]:
        """``uid``'s tweets of the recent window (7 days before now) that have replies, quotes,
        retweets and likes, newest first: seeds for tests of the collection endpoints."""
        cut = ((self.now_ms - RECENT_DAYS * _DAY - TWITTER_EPOCH_MS) << 22)
        return [tid for tid in self.timeline(uid) if tid >= cut and all(self.metrics(tid))]
