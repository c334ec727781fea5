"""The evolving world: what changes after the world's creation, step by step.

A :class:`World` is the world at its creation (generation 0). Each later
*generation* (one step of the sandbox's logical clock, a day by default) users
post new tweets, follow new accounts and drop some follows, deterministically:
the same seed, size and step give the same changes in every run.
:meth:`Evolution.at` answers with a :class:`WorldAt` view of generation ``g``,
which has the ``World`` methods the API handlers and the ground truth use;
generation 0 is the ``World`` itself, so nothing changes until the clock has
moved one step.

* **Tweets.** In generation ``k`` a user who has tweeted posts ``n_k(u)``
  originals, a hashed draw around its own pace (one tweet per timeline gap, at
  most 24 a step). They are dated inside the step after ``WORLD_NOW + (k-1) *
  step``, so their ids are newer than every earlier tweet and decode in O(1)
  back to ``(u, k, j)``. Nothing is stored: counts are sums of hashed draws.
* **Follows.** Each generation adds about ``users / 10`` follows (a uniform
  follower of a popularity-biased account, as new follows go) and removes
  about ``users / 20`` (a uniform user drops one of the follows it had at the
  world's creation).
  The changes are drawn once per generation, in order (a removal picks from
  the list as the previous generation left it), and indexed by both ends, so
  ``following`` and ``followers`` stay exact inverses and counts stay exact.
  New follows come first in both lists (newest first, as the API lists them).
* **Engagement.** The search corpus's new tweets are partly replies, quotes and
  retweets of its friends' newest tweets, and bring likes
  (:mod:`.evolution_engagement`): old and new tweets gain engagement, and their
  ``public_metrics`` follow it.
* **Search** covers the new tweets of the searchable users too, and "recent"
  is the 7 days before the generation's now (so old tweets leave it).
* **Unchanged:** accounts' states, profiles, old tweets (but for their metrics), lists.

Lazy: nothing is built before a generation > 0 is asked for; generation ``g``
costs O(changes) once (about ``0.15 * users`` follow changes, capped at 30,000
a generation), then views answer from the base world's caches plus the changes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import struct
from array import array
from datetime import datetime, timezone
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from .common import (
    bfs_expansion,
    _DAY,
    _GOLD,
    _M22,
    _NOW_MS,
    _PUNCT,
    _UNLISTED_CODE,
    NORMAL,
    QUOTE,
    RECENT_DAYS,
    REPLY,
    RETWEET,
    TIMELINE_CAP,
    TWITTER_EPOCH_MS,
    _mix,
)
from .engagement import Metrics
from .evolution_engagement import EvolvingEngagement
from .lists import merged_timelines
from .query import _Evaluator, _parse
from .records import Counts, Tweet, User
from .search_index import _SearchIndex
from .vocabulary import _b62, _LANG_OF, _SOURCE_HTML, _TAG_TABLE, _WORD_TABLE

if TYPE_CHECKING:
    from .core import World

MAX_NEW_TWEETS = 24  # per user and generation
_ADD_SHARE, _ADD_MAX = 10, 20_000  # follows added per generation: users // 10, at most 20,000
_DROP_SHARE, _DROP_MAX = 20, 10_000  # follows removed: users // 20, at most 10,000
_u16x32 = struct.Struct("=32H").unpack

# one follow change: (generation, other end's user id, +1 added / -1 removed)
Change = tuple[int, int, int]


class Evolution:
    """The changes of one world, generation by generation (built on demand, kept)."""

    def __init__(self, world: World, step_seconds: float = 86_400.0) -> None:
        self.world = world
        self.step_ms = max(1000, int(step_seconds * 1000))  # >= 1 s: a step's tweets get distinct times
        self._key = _mix(world._k_misc + 0x5EED)
        self._built = 0
        self._out: dict[int, list[Change]] = {}  # follower id -> changes of its following list
        self._in: dict[int, list[Change]] = {}  # followed id -> changes of its followers list
        self._views: dict[int, WorldAt] = {}
        self._indexes: dict[int, _SearchIndex] = {}  # generation -> its new tweets' search corpus
        self._n_new: dict[int, int] = {}  # (u << 24 | k) -> new_tweets(u, k)
        self.engagement = EvolvingEngagement(self)  # replies, quotes, retweets and likes of each generation

    def generation(self, elapsed_seconds: float) -> int:
        """The generation ``elapsed_seconds`` of logical time after the world's creation."""
        return max(0, int(elapsed_seconds * 1000 // self.step_ms))

    def at(self, generation: int) -> World | WorldAt:
        """The world as it is in ``generation`` (0: the world itself)."""
        if generation <= 0:
            return self.world
        view = self._views.get(generation)
        if view is None:
            while self._built < generation:
                self._build(self._built + 1)
            if len(self._views) >= 8:
                self._views.pop(next(iter(self._views)))
            view = self._views[generation] = WorldAt(self, generation)
        return view

    # ---- follows ----------------------------------------------------------------------

    def _build(self, k: int) -> None:
        w = self.world
        n = w.users
        codes = w._codes()
        rng = random.Random(f"tweetform-evolve:{w.seed}:{n}:{k}")
        touched: set[tuple[int, int]] = set()

        def listed(i: int) -> bool:
            return codes[i] != _UNLISTED_CODE

        for _ in range(min(_ADD_MAX, max(20, n // _ADD_SHARE))):
            v, u = rng.randrange(n), w._popular_index(rng.getrandbits(64))
            if v == u or not (listed(v) and listed(u)):
                continue
            vid, uid = w._id(v), w._id(u)
            if (vid, uid) in touched or self._follows(vid, v, uid, u, k - 1):
                continue
            touched.add((vid, uid))
            self._record(k, vid, uid, +1)
        for _ in range(min(_DROP_MAX, max(10, n // _DROP_SHARE))):
            # one of v's follows from the world's creation, drawn without building its list
            v = rng.randrange(n)
            if not listed(v):
                continue
            u = w._friend_at(v, rng.randrange(max(1, w._friend_slots(v))))
            if u is None:
                continue
            vid, uid = w._id(v), w._id(u)
            if (vid, uid) in touched or not self._follows(vid, v, uid, u, k - 1):
                continue
            touched.add((vid, uid))
            self._record(k, vid, uid, -1)
        self._built = k

    def _record(self, k: int, source: int, target: int, sign: int) -> None:
        self._out.setdefault(source, []).append((k, target, sign))
        self._in.setdefault(target, []).append((k, source, sign))

    def _follows(self, vid: int, v: int, uid: int, u: int, g: int) -> bool:
        """Whether ``vid`` (index ``v``) follows ``uid`` (index ``u``) in generation ``g``."""
        sign = 0
        for k, other, change in self._out.get(vid, ()):
            if k > g:
                break
            if other == uid:
                sign = change
        return sign == 1 if sign else self.world._follows(v, u)

    @staticmethod
    def _apply(base: tuple[int, ...], changes: list[Change] | None, g: int) -> tuple[int, ...]:
        """``base`` with the changes of generations <= ``g``: new members first (newest first)."""
        if not changes:
            return base
        last: dict[int, int] = {}
        for k, other, sign in changes:
            if k > g:
                break  # changes are appended in generation order
            last[other] = sign
        if not last:
            return base
        added = [other for k, other, sign in reversed(changes) if k <= g and last.get(other) == 1 and sign == 1]
        gone = {other for other, sign in last.items() if sign == -1}
        gone.update(added)
        return tuple(dict.fromkeys(added)) + tuple(x for x in base if x not in gone)

    def following(self, uid: int, g: int) -> tuple[int, ...]:
        return self._apply(self.world.following(uid), self._out.get(uid), g)

    def followers(self, uid: int, g: int) -> tuple[int, ...]:
        return self._apply(self.world.followers(uid), self._in.get(uid), g)

    def _net(self, changes: list[Change] | None, g: int) -> int:
        """How many members the changes up to ``g`` add to a list, net."""
        if not changes:
            return 0
        last: dict[int, int] = {}
        first: dict[int, int] = {}
        for k, other, sign in changes:
            if k > g:
                break
            first.setdefault(other, sign)
            last[other] = sign
        # a member was in the base list iff its first change removed it
        return sum((s == 1) - (first[o] == -1) for o, s in last.items())

    # ---- tweets -----------------------------------------------------------------------------

    def new_tweets(self, u: int, k: int) -> int:
        """How many tweets user index ``u`` posts in generation ``k`` (cached: engagement asks often)."""
        key = (u << 24) | k
        n = self._n_new.get(key)
        if n is None:
            if len(self._n_new) >= 1 << 20:
                self._n_new.clear()
            n = self._n_new[key] = self._count_new(u, k)
        return n

    def _count_new(self, u: int, k: int) -> int:
        w = self.world
        if w._codes()[u] == _UNLISTED_CODE:
            return 0
        tl = w._tl(u)
        if not tl.length:
            return 0
        rate = min(float(MAX_NEW_TWEETS), self.step_ms / tl.gap)
        h = _mix(self._key + (u << 20) * _GOLD + k)
        return min(MAX_NEW_TWEETS, int(2 * rate * ((h >> 11) / 9007199254740992.0)))

    def _slot(self, k: int, n: int, j: int) -> int:
        """ms (unix) of the ``j``-th of ``n`` tweets of generation ``k``."""
        return _NOW_MS + (k - 1) * self.step_ms + (j + 1) * self.step_ms // (n + 1)

    def _new_of(self, u: int, g: int) -> list[tuple[int, int, int]]:
        """``(tweet id, k, j)`` of user index ``u``'s tweets of generations 1..g, newest first."""
        out = []
        for k in range(g, 0, -1):
            n = self.new_tweets(u, k)
            for j in range(n - 1, -1, -1):
                out.append((((self._slot(k, n, j) - TWITTER_EPOCH_MS) << 22) | u, k, j))
        return out

    def new_tweet_ids(self, u: int, g: int) -> list[int]:
        """User index ``u``'s tweets of generations 1..g, newest first."""
        return [tid for tid, _, _ in self._new_of(u, g)]

    def decode(self, tid: int, g: int) -> tuple[int, int, int, int] | None:
        """``(u, k, n, j)`` of a tweet of generations 1..g, or None."""
        u = tid & _M22
        t = (tid >> 22) + TWITTER_EPOCH_MS
        if u >= self.world.users or t <= _NOW_MS:
            return None
        k = (t - _NOW_MS) // self.step_ms + 1
        if k > g:
            return None
        n = self.new_tweets(u, k)
        if not n:
            return None
        off = t - _NOW_MS - (k - 1) * self.step_ms
        j = off * (n + 1) // self.step_ms - 1
        for cand in (j, j + 1):
            if 0 <= cand < n and self._slot(k, n, cand) == t:
                return u, k, n, cand
        return None

    def _gen_index(self, k: int) -> _SearchIndex:
        """The search corpus of generation ``k``: the new tweets of the searchable users (built once)."""
        idx = self._indexes.get(k)
        if idx is None:
            w = self.world
            rows = []
            for u in range(min(w.search_users, w.users)):
                if w._state(u) != NORMAL:
                    continue
                n = self.new_tweets(u, k)
                for j in range(n):
                    tid = ((self._slot(k, n, j) - TWITTER_EPOCH_MS) << 22) | u
                    toks, tags, names, lang, keys = self.engagement.tokens(u, k, j)
                    line_keys = [f"from:{u}", f"lang:{lang}", *["#" + t for t in tags], *["@" + x for x in names], *keys]
                    rows.append((tid, f" {' '.join(toks)} {' '.join(line_keys)} \n"))
            rows.sort(reverse=True)
            idx = self._indexes[k] = _SearchIndex(array("q", [tid for tid, _ in rows]), [line for _, line in rows])
        return idx

    def search_new(self, query: str, g: int) -> list[int]:
        """New tweets (generations 1..g) matching ``query``, newest first."""
        tree = _parse(query)
        out: list[int] = []
        for k in range(g, 0, -1):
            idx = self._gen_index(k)
            hits = _Evaluator(self.world, idx).eval(tree)
            out += [idx.tids[p] for p in sorted(hits)]
        return out

    def _content(self, u: int, k: int, j: int) -> tuple[tuple[str, ...], tuple[str, ...], str, tuple[int, ...]]:
        """(lowercase words, hashtags, lang, the rest of the randomness) of a new tweet."""
        rnd = hashlib.blake2b(self.world._bkey + b"evolve" + struct.pack("<IIH", u, k, j)).digest()
        vals = _u16x32(rnd)
        words = tuple(_WORD_TABLE[v] for v in vals[1 : 6 + vals[0] % 14])
        tags = (_TAG_TABLE[vals[21] % len(_TAG_TABLE)],) if vals[20] % 4 == 0 else ()
        return words, tags, _LANG_OF[rnd[40]], vals

    def new_tweet(self, tid: int, u: int, k: int, j: int, view: WorldAt | None = None) -> Tweet:
        """New tweet ``(u, k, j)`` as ``view`` (generation >= k; default: generation k) shows it:
        its metrics are the view's."""
        if view is None:
            view = self.at(k)  # type: ignore[assignment]
        assert view is not None
        w = self.world
        words, tags, lang, vals = self._content(u, k, j)
        ref = self.engagement.ref(u, k, j)
        created = datetime.fromtimestamp(((tid >> 22) + TWITTER_EPOCH_MS) / 1000, timezone.utc)
        source = _SOURCE_HTML[w._h(w._k_misc, u) % len(_SOURCE_HTML)]
        if ref.kind == RETWEET:
            orig = view.tweet(ref.target)  # type: ignore[arg-type]
            assert orig is not None
            oname = w._screen_name(ref.target & _M22)  # type: ignore[operator]
            return Tweet(
                tid, w._id(u), created, f"RT @{oname}: {orig.text}", orig.lang, source, None, None, None, orig.id, None,
                tid, list(orig.hashtags), [orig.author_id] + [m for m in orig.mentions if m != orig.author_id],
                list(orig.urls), False, orig.possibly_sensitive, view,
            )
        text = words[0].capitalize() + "".join(" " + x for x in words[1:]) + _PUNCT[vals[19] % 6]
        in_reply: tuple[int, int, str] | None = None
        quoted = None
        conversation = tid
        mentions: list[int] = []
        urls: list[tuple[str, str]] = []
        if ref.kind in (REPLY, QUOTE):
            a = ref.target & _M22  # type: ignore[operator]
            name = w._screen_name(a)
            if ref.kind == REPLY:
                in_reply = (ref.target, w._id(a), name)  # type: ignore[assignment]
                text = f"@{name} {text}"
                mentions.append(w._id(a))
                conversation = self.engagement.conversation_of(ref.target, k - 1)  # type: ignore[arg-type]
        for tag in tags:
            text += " #" + tag
        if ref.kind == QUOTE:
            quoted = ref.target
            short = "https://t.co/" + _b62((vals[27] << 32) | (vals[28] << 16) | vals[29], 10)
            urls.append((short, f"https://twitter.com/{name}/status/{quoted}"))
            text += " " + short
        return Tweet(
            tid, w._id(u), created, text, lang, source,
            in_reply[0] if in_reply else None, in_reply[1] if in_reply else None, in_reply[2] if in_reply else None,
            None, quoted, conversation, list(tags), mentions, urls,
            False, False, view,
        )


class WorldAt:
    """The world in a generation > 0: the ``World`` methods the API and the ground truth use."""

    def __init__(self, evolution: Evolution, generation: int) -> None:
        self.evolution = evolution
        self.base = evolution.world
        self.generation = generation
        self.now_ms = _NOW_MS + generation * evolution.step_ms
        self.now = datetime.fromtimestamp(self.now_ms / 1000, timezone.utc)
        self._counts = lru_cache(maxsize=1 << 14)(self._gen_counts)
        self._user = lru_cache(maxsize=1 << 14)(self._gen_user)
        self._timeline = lru_cache(maxsize=1024)(self._gen_timeline)
        # the lists, cached like the base world's (a page of a long list must not re-apply the changes)
        self._following = lru_cache(maxsize=4096)(lambda uid: evolution.following(uid, generation))
        self._followers = lru_cache(maxsize=1024)(lambda uid: evolution.followers(uid, generation))

    def __repr__(self) -> str:
        return f"{self.base!r}.at({self.generation})"

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)  # everything that does not change: ids, names, examples, search

    # ---- accounts -------------------------------------------------------------------------

    def _gen_user(self, i: int) -> User:
        return dataclasses.replace(self.base._user(i), _world=self)  # its counts are this generation's

    def user(self, uid: int) -> User | None:
        i = self.base.index_of(uid)
        return None if i is None else self._user(i)

    def user_by_screen_name(self, name: str) -> User | None:
        i = self.base.index_of_screen_name(name)
        return None if i is None else self._user(i)

    def _gen_counts(self, i: int) -> Counts:
        base = self.base._counts(i)
        if self.base._codes()[i] == _UNLISTED_CODE:
            return base
        ev, g, uid = self.evolution, self.generation, self.base._id(i)
        return Counts(
            base.followers + ev._net(ev._in.get(uid), g),
            base.friends + ev._net(ev._out.get(uid), g),
            base.statuses + sum(ev.new_tweets(i, k) for k in range(1, g + 1)),
        )

    def counts(self, uid: int) -> Counts:
        i = self.base.index_of(uid)
        return Counts(0, 0, 0) if i is None else self._counts(i)

    # ---- graph ----------------------------------------------------------------------------

    def following(self, uid: int) -> tuple[int, ...]:
        return self._following(uid)

    def followers(self, uid: int) -> tuple[int, ...]:
        return self._followers(uid)

    def reachable(self, seed_ids: list[int], depth: int, direction: Literal["friends", "followers"] = "friends",
                  max_users: int | None = None) -> list[int]:
        """``World.reachable`` over this generation's lists (same order rules)."""
        lists = self.following if direction == "friends" else self.followers

        def list_of(uid: int) -> Any:
            i = self.base.index_of(uid)
            return None if i is None or self.base._state(i) != NORMAL else lists(uid)

        return bfs_expansion(seed_ids, depth, direction, max_users, list_of)

    # ---- timelines and tweets ----------------------------------------------------------------

    def _gen_timeline(self, i: int) -> tuple[int, ...]:
        new = self.evolution.new_tweet_ids(i, self.generation)  # none for unlisted or silent users
        return tuple(new) + self.base._timeline_ids(i) if new else self.base._timeline_ids(i)

    def timeline(self, uid: int) -> tuple[int, ...]:
        i = self.base.index_of(uid)
        return () if i is None else self._timeline(i)

    def reachable_timeline(self, uid: int) -> tuple[int, ...]:
        return self.timeline(uid)[:TIMELINE_CAP]

    def search(self, query: str, *, archive: bool = False) -> list[int]:
        """``World.search`` now: the new tweets too, and "recent" is the 7 days before this now."""
        ids = self.base.search(query, archive=archive)
        ids = self.evolution.search_new(query, self.generation) + ids
        if archive:
            return ids
        cut = (self.now_ms - RECENT_DAYS * _DAY - TWITTER_EPOCH_MS) << 22
        return [i for i in ids if i >= cut]

    def list_tweet_ids(self, lid: int) -> list[int]:
        """A list's tweets now: its members' timelines of this generation (members do not change)."""
        rec = self.base.list_record(lid)
        return [] if rec is None else merged_timelines(self, rec.members)

    def mention_ids(self, uid: int) -> list[int]:
        user = self.user(uid)
        return [] if user is None else self.search("@" + user.screen_name, archive=True)

    def tweet(self, tid: int) -> Tweet | None:
        if not isinstance(tid, int) or isinstance(tid, bool) or tid <= 0 or tid >= 1 << 63:
            return None
        d = self.evolution.decode(tid, self.generation)
        if d is None:
            t = self.base.tweet(tid)
            if t is None:
                return None
            return dataclasses.replace(t, _world=self)  # its metrics: this generation's
        u, k, _, j = d
        return self.evolution.new_tweet(tid, u, k, j, self)

    # ---- engagement: the generations' (newest first), then the base world's ----------------------

    def metrics(self, tid: int) -> Metrics:
        return self.evolution.engagement.metrics(tid, self.generation)

    def quote_ids(self, tid: int) -> list[int]:
        return self.evolution.engagement.ids("quotes", tid, self.generation, self.base.quote_ids(tid))

    def reply_ids(self, tid: int) -> list[int]:
        return self.evolution.engagement.ids("replies", tid, self.generation, self.base.reply_ids(tid))

    def _pairs(self, table: str, key: int) -> list[tuple[int, int]]:
        eng = self.evolution.engagement
        return eng.ids(table, key, self.generation, getattr(self.base._engagement(), table).get(key, []))

    def retweeter_ids(self, tid: int) -> list[int]:
        return self.evolution.engagement.distinct(self._pairs("retweets", tid))

    def liker_ids(self, tid: int) -> list[int]:
        return self.evolution.engagement.distinct(self._pairs("likes", tid))

    def likes_of(self, tid: int) -> list[tuple[int, int]]:
        seen: set[int] = set()
        return [(t, uid) for t, uid in self._pairs("likes", tid) if not (uid in seen or seen.add(uid))]  # type: ignore[func-returns-value]

    def liked_ids(self, uid: int) -> list[int]:
        return self.evolution.engagement.distinct(self._pairs("liked", uid))

    def engaged_ids(self, uid: int) -> list[int]:
        cut = (self.now_ms - RECENT_DAYS * _DAY - TWITTER_EPOCH_MS) << 22
        return [tid for tid in self.timeline(uid) if tid >= cut and all(self.metrics(tid))]

