"""Engagement in the evolving world: each generation's replies, quotes, retweets and likes.

In generation ``k`` a corpus user's new tweet (see :mod:`.evolution`) is, by a hashed
draw, an original (69%), a reply (12.5%), a quote (6%) or a retweet (12.5%) of the
*newest* tweet, at the generation's start, of one of its friends (or of a famous
account); each new tweet also brings 0-2 likes of such tweets, at its time. So old
and new tweets gain replies, quotes, retweets and likes as the clock moves, and a
second crawl differs from the first. A generation's engagement is an
:class:`~.engagement.EngagementIndex` of its own, built once on demand; a view of
generation ``g`` adds the ones of generations ``1..g`` (newest first) to the base
world's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from .common import _DELETED_BELOW, _GOLD, _mix, NORMAL, ORIGINAL, QUOTE, REPLY, RETWEET, _SPECIAL_BELOW, TWITTER_EPOCH_MS
from .engagement import _LIKES_PER_SLOT, EngagementIndex, Metrics

if TYPE_CHECKING:
    from .evolution import Evolution

#: a new tweet's kind by a hashed value mod 16
_NEW_KIND = (REPLY, REPLY, QUOTE, RETWEET, RETWEET) + (ORIGINAL,) * 11
_KEY = 0xE7A6E


class NewRef(NamedTuple):
    kind: int  # ORIGINAL, REPLY, QUOTE or RETWEET
    target: int | None  # the tweet replied to, quoted or retweeted (always an original's id for a retweet)


_ORIGINAL = NewRef(ORIGINAL, None)


class EvolvingEngagement:
    """What generations add to the world's engagement (one per :class:`~.evolution.Evolution`)."""

    def __init__(self, evolution: Evolution) -> None:
        self.ev = evolution
        self.world = evolution.world
        self._deltas: dict[int, EngagementIndex] = {}
        self._refs: dict[tuple[int, int, int], NewRef] = {}
        self._newest: dict[tuple[int, int], int | None] = {}

    def corpus(self, u: int) -> bool:
        w = self.world
        return u < min(w.search_users, w.users) and w._state(u) == NORMAL

    def newest(self, v: int, g: int) -> int | None:
        """User index ``v``'s newest tweet id in generation ``g`` (new ones first, then the base timeline).

        Walks back one generation at a time to one it posted in or one already answered (cached),
        without recursion: a long-running sandbox may be thousands of generations old."""
        cache = self._newest
        if len(cache) >= 1 << 18:
            cache.clear()
        walked: list[tuple[int, int]] = []
        k = g
        while True:
            key = (v, k)
            if key in cache:
                found = cache[key]
                break
            walked.append(key)
            if k == 0:
                found = self._base_newest(v)
                break
            n = self.ev.new_tweets(v, k)
            if n:
                found = ((self.ev._slot(k, n, n - 1) - TWITTER_EPOCH_MS) << 22) | v
                break
            k -= 1
        for key in walked:
            cache[key] = found
        return found

    def _base_newest(self, v: int) -> int | None:
        """``v``'s newest non-deleted tweet in the world as created."""
        w = self.world
        meta = w._tmeta(v)
        s = w._tl(v).length - 1
        while s >= 0 and meta[8 * s + 4] < _DELETED_BELOW:
            s -= 1
        return w._tid(v, s) if s >= 0 else None

    def original_of(self, tid: int, g: int) -> int | None:
        """``tid`` itself, or the tweet it retweets (None if that cannot be told)."""
        d = self.ev.decode(tid, g)
        if d is not None:
            ref = self.ref(d[0], d[1], d[3])
            return ref.target if ref.kind == RETWEET else tid
        base = self.world.decode_tweet_id(tid)
        if base is None:
            return None
        v, s = base
        if self.world._kind_byte(v, s) == RETWEET:
            orig = self.world._ref(v, s)
            return None if orig is None else self.world._tid(*orig)
        return tid

    def target(self, u: int, k: int, h: int) -> int | None:
        """The tweet ``u`` engages with in generation ``k``: a friend's (or a famous account's) newest
        at the generation's start, unless that is a retweet. So only a tweet that was its author's
        newest at a generation's start gains engagement in it (:meth:`gens` reads no other)."""
        w = self.world
        friends = w._friends_idx(u)
        for v in (friends[h % len(friends)] if friends else -1, (h >> 32) % min(w.users, _SPECIAL_BELOW)):
            if v < 0 or v == u or w._state(v) != NORMAL:
                continue
            tid = self.newest(v, k - 1)
            if tid is None or self.original_of(tid, k - 1) != tid:  # none, or a retweet: not engaged with
                continue
            return tid
        return None

    def ref(self, u: int, k: int, j: int) -> NewRef:
        """What new tweet ``(u, k, j)`` is: an original, or a reply, quote or retweet of what."""
        key = (u, k, j)
        hit = self._refs.get(key)
        if hit is None:
            hit = _ORIGINAL
            if self.corpus(u):
                h = _mix(self.ev._key + _KEY + ((u << 20) | (k << 5) | j) * _GOLD)
                kind = _NEW_KIND[h & 15]
                if kind != ORIGINAL:
                    target = self.target(u, k, h >> 4)
                    if target is not None:
                        hit = NewRef(kind, target)
            if len(self._refs) > 1 << 17:
                self._refs.clear()
            self._refs[key] = hit
        return hit

    def delta(self, k: int) -> EngagementIndex:
        """Generation ``k``'s engagement (built once)."""
        idx = self._deltas.get(k)
        if idx is None:
            idx = EngagementIndex()
            w, ev = self.world, self.ev
            for u in range(min(w.search_users, w.users)):
                if not self.corpus(u):
                    continue
                n = ev.new_tweets(u, k)
                uid = w._id(u)
                mine: list[tuple[int, int]] = []
                for j in range(n):
                    t_ms = ev._slot(k, n, j)
                    tid = ((t_ms - TWITTER_EPOCH_MS) << 22) | u
                    ref = self.ref(u, k, j)
                    if ref.kind == REPLY:
                        idx.replies.setdefault(ref.target, []).append(tid)  # type: ignore[arg-type]
                    elif ref.kind == QUOTE:
                        idx.quotes.setdefault(ref.target, []).append(tid)  # type: ignore[arg-type]
                    elif ref.kind == RETWEET:
                        idx.retweets.setdefault(ref.target, []).append((tid, uid))  # type: ignore[arg-type]
                    h = _mix(ev._key + _KEY + 1 + ((u << 20) | (k << 5) | j) * _GOLD)
                    for i in range(_LIKES_PER_SLOT[h & 7]):
                        target = self.target(u, k, _mix(h + i) >> 3)
                        if target is not None:
                            idx.likes.setdefault(target, []).append((t_ms, uid))
                            mine.append((t_ms, target))
                if mine:
                    idx.liked[uid] = mine
            idx.finish()
            self._deltas[k] = idx
        return idx

    # ---- a view of generation g: the deltas of g..1, then the base world ------------------------

    def gens(self, tid: int, g: int) -> list[int]:
        """The generations ``<= g`` that may engage with ``tid``, newest first: those it was its author's
        newest tweet at the start of. A tweet of generation ``k0`` (0: the world as created) that was
        the newest then stays so until its author posts again, in generation ``m``: ``k0+1 .. m``.
        (A tweet id keeps its author's index in its low 22 bits.)"""
        author = tid & ((1 << 22) - 1)
        d = self.ev.decode(tid, g)
        if d is not None:
            k0 = d[1]
            if d[3] != d[2] - 1:  # not the last of its generation's tweets: never the newest at a start
                return []
        else:
            k0 = 0
            if author >= self.world.users or tid != self._base_newest(author):
                return []
        out = []
        for k in range(k0 + 1, g + 1):
            out.append(k)
            if self.ev.new_tweets(author, k):
                break
        out.reverse()
        return out

    def touched(self, tid: int, g: int) -> bool:
        for k in self.gens(tid, g):
            d = self.delta(k)
            if tid in d.retweets or tid in d.likes or tid in d.replies or tid in d.quotes:
                return True
        return False

    def ids(self, table: str, key: int, g: int, base: list) -> list:
        """The generations' entries of ``table`` for ``key`` (newest first), then ``base``'s."""
        out: list = []
        for k in (range(g, 0, -1) if table == "liked" else self.gens(key, g)):
            out += getattr(self.delta(k), table).get(key, ())
        return out + base

    def distinct(self, pairs: list[tuple[int, int]]) -> list[int]:
        """The second members of newest-first pairs, each once (its newest)."""
        seen: set[int] = set()
        return [x for _, x in pairs if not (x in seen or seen.add(x))]  # type: ignore[func-returns-value]

    def metrics(self, tid: int, g: int) -> Metrics:
        base = self.world._engagement()
        if not self.touched(tid, g):
            return base.metrics(tid)
        return Metrics(
            len(self.distinct(self.ids("retweets", tid, g, base.retweets.get(tid, [])))),
            len(self.distinct(self.ids("likes", tid, g, base.likes.get(tid, [])))),
            len(self.ids("replies", tid, g, base.replies.get(tid, []))),
            len(self.ids("quotes", tid, g, base.quotes.get(tid, []))),
        )

    def conversation_of(self, tid: int, g: int) -> int:
        """The conversation (root tweet id) of ``tid`` in generation ``g``."""
        d = self.ev.decode(tid, g)
        if d is not None:
            ref = self.ref(d[0], d[1], d[3])
            return self.conversation_of(ref.target, g) if ref.kind == REPLY else tid  # type: ignore[arg-type]
        base = self.world.decode_tweet_id(tid)
        return tid if base is None else self.world._conversation(*base)

    def tokens(self, u: int, k: int, j: int) -> tuple[list[str], list[str], list[str], str, list[str]]:
        """``(tokens, lowercase hashtags, lowercase mentioned names, lang, is:/to:/conversation_id: keys)``
        of new tweet ``(u, k, j)``, as its text renders (see ``Evolution.new_tweet``)."""
        words, tags, lang, _ = self.ev._content(u, k, j)
        ref = self.ref(u, k, j)
        w = self.world
        low_tags = [t.lower() for t in tags]
        if ref.kind == ORIGINAL:
            return [*words, *low_tags], low_tags, [], lang, []
        a = ref.target & ((1 << 22) - 1)  # type: ignore[operator]
        name = w._screen_name(a).lower()
        if ref.kind == REPLY:
            conv = self.conversation_of(ref.target, k - 1)  # type: ignore[arg-type]
            return [name, *words, *low_tags], low_tags, [name], lang, ["is:reply", f"to:{a}", f"conversation_id:{conv}"]
        if ref.kind == QUOTE:
            return [*words, *low_tags], low_tags, [], lang, ["is:quote"]
        # a retweet: "RT @name: " and the original's text
        d = self.ev.decode(ref.target, k - 1)  # type: ignore[arg-type]
        if d is not None:
            otoks, otags, onames, olang, _ = self.tokens(d[0], d[1], d[3])
        else:
            otoks, otags, onames, olang = w._tokens(*w.decode_tweet_id(ref.target))  # type: ignore[misc]
        return ["rt", name, *otoks], otags, [name, *[n for n in onames if n != name]], olang, ["is:retweet"]
