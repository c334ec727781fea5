"""Lists: who owns which, their members and followers, and the tweets of their members.

Owners are the corpus's visible users (index < ``search_users``): the famous accounts
(index < 64; ``@jack`` has 3) own 1-3 lists, one other user in five owns 1 or 2. A
list id decodes in O(1) to ``(owner index, k)``: ``LIST_BASE + index * 8 + k``.

* Members: a hashed sample (3-42) of the owner's visible friends at the world's
  creation (lists do not evolve), so famous accounts are members of many lists.
* Followers: 0-29 visible corpus users, never the owner.
* Tweets: the members' timelines merged, newest first, the newest 800 (the API's cap);
  in the evolving world the members' new tweets too.

A list is ``(id, owner, name, description, created, members, followers)``, derived on
demand; the reverse look-ups (a user's memberships and followed lists) read an index of
every list, built on first use (a few hundred lists for 2,000 corpus users).
"""

from __future__ import annotations

import heapq
from datetime import datetime, timezone
from itertools import islice
from typing import Any, NamedTuple

from .common import _GOLD, _mix, NORMAL, _NOW_MS, _SPECIAL_BELOW
from .vocabulary import _WORD_TABLE

LIST_BASE = 1_300_000_000_000_000_000
MAX_LISTS = 8  # per owner: k < 8
LIST_TWEETS_CAP = 800
_LIST_KEY = 0x1157ED


class ListRecord(NamedTuple):
    id: int
    owner_id: int
    name: str
    description: str
    created_at: datetime
    members: tuple[int, ...]  # user ids, in the list's order
    followers: tuple[int, ...]


def merged_timelines(world: Any, uids: tuple[int, ...], cap: int = LIST_TWEETS_CAP) -> list[int]:
    """The newest ``cap`` tweets of ``uids``' timelines (as ``world`` has them), newest first."""
    return list(islice(heapq.merge(*(world.timeline(u) for u in uids), reverse=True), cap))


class _Lists:
    """Lists, owned by corpus users. A mixin of :class:`World`."""

    def _n_lists(self, u: int) -> int:
        if u >= min(self.search_users, self.users) or self._state(u) != NORMAL:
            return 0
        if u == 0:
            return 3
        h = _mix(self._k_misc + _LIST_KEY + u * _GOLD)
        if u < _SPECIAL_BELOW:
            return 1 + h % 3
        return 0 if h % 5 else 1 + (h >> 8) % 2

    def decode_list_id(self, lid: int) -> tuple[int, int] | None:
        if not isinstance(lid, int) or lid < LIST_BASE:
            return None
        u, k = divmod(lid - LIST_BASE, MAX_LISTS)
        return (u, k) if u < self.users and k < self._n_lists(u) else None

    def list_record(self, lid: int) -> ListRecord | None:
        """The list with id ``lid``, or None if there is none."""
        d = self.decode_list_id(lid)
        return None if d is None else self._list(*d)

    def _gen_list(self, u: int, k: int) -> ListRecord:
        lid = LIST_BASE + u * MAX_LISTS + k
        h = _mix(self._k_misc + _LIST_KEY + lid * _GOLD)
        h2 = _mix(h + 1)
        owner = self._id(u)
        words = [_WORD_TABLE[(h >> s) & 0xFFFF] for s in (0, 16, 32)]
        name = f"{words[0]} {words[1]}"
        description = "" if h2 % 4 == 0 else f"{words[0].capitalize()}, {words[1]} and {words[2]}"
        born = max(self._created_ms(u, owner), _NOW_MS - 3 * 365 * 86_400_000)
        created = datetime.fromtimestamp((born + (h2 >> 16) % max(1, _NOW_MS - born)) / 1000, timezone.utc)
        # members: a hashed order of the owner's visible friends (at the world's creation), cut
        friends = [f for f in self.following(owner) if self._state(self.index_of(f)) == NORMAL]
        friends.sort(key=lambda f: _mix(h + f))
        members = tuple(friends[: 3 + h2 % 40])
        # followers: corpus users, never the owner, each once
        want = (h2 >> 8) % 30
        corpus = min(self.search_users, self.users)
        followers: dict[int, None] = {}
        for i in range(want * 2):
            v = _mix(h2 + i * _GOLD) % corpus
            if v != u and self._state(v) == NORMAL:
                followers[self._id(v)] = None
                if len(followers) == want:
                    break
        return ListRecord(lid, owner, name, description, created, members, tuple(followers))

    def _list_index(self) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
        """(user id -> lists it is a member of, user id -> lists it follows), newest list first."""
        idx = self._lists_idx
        if idx is None:
            members: dict[int, list[int]] = {}
            followers: dict[int, list[int]] = {}
            for u in range(min(self.search_users, self.users) - 1, -1, -1):
                for k in range(self._n_lists(u) - 1, -1, -1):
                    rec = self._list(u, k)
                    for m in rec.members:
                        members.setdefault(m, []).append(rec.id)
                    for f in rec.followers:
                        followers.setdefault(f, []).append(rec.id)
            idx = self._lists_idx = (members, followers)
        return idx

    # ---- what the endpoints and the ground truth answer with ------------------------------------

    def list_member_ids(self, lid: int) -> list[int]:
        rec = self.list_record(lid)
        return [] if rec is None else list(rec.members)

    def list_follower_ids(self, lid: int) -> list[int]:
        rec = self.list_record(lid)
        return [] if rec is None else list(rec.followers)

    def list_tweet_ids(self, lid: int) -> list[int]:
        rec = self.list_record(lid)
        return [] if rec is None else merged_timelines(self, rec.members)

    def owned_list_ids(self, uid: int) -> list[int]:
        u = self.index_of(uid)
        return [] if u is None else [LIST_BASE + u * MAX_LISTS + k for k in range(self._n_lists(u) - 1, -1, -1)]

    def membership_ids(self, uid: int) -> list[int]:
        return list(self._list_index()[0].get(uid, ()))

    def followed_list_ids(self, uid: int) -> list[int]:
        return list(self._list_index()[1].get(uid, ()))
