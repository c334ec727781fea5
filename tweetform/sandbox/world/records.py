"""The public records: ``User``, ``Tweet``, ``Counts`` (and two internal tuples)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, TYPE_CHECKING


if TYPE_CHECKING:
    from .core import World


# --- public records -----------------------------------------------------------------------


class Counts(NamedTuple):
    followers: int
    friends: int
    statuses: int


@dataclass(frozen=True, slots=True)
class User:
    """An account. ``followers_count``, ``friends_count`` and ``statuses_count``
    are properties read from ``World.counts`` (exact: ``len(followers)``,
    ``len(following)``, ``len(timeline)``, counted without building those
    lists, cached), so building a ``User`` stays cheap. ``listed_count`` and
    ``favourites_count`` are what the list-memberships and liked-tweets endpoints
    list for the account, read on demand from the world it came from (its list and
    engagement indexes, built on first use)."""

    id: int
    index: int
    screen_name: str
    name: str
    created_at: datetime
    description: str
    location: str
    url: str | None
    protected: bool
    suspended: bool
    deleted: bool
    verified: bool
    lang: str | None
    profile_image_url: str
    _world: World = field(repr=False, compare=False, hash=False)

    @property
    def followers_count(self) -> int:
        return self._world._counts(self.index)[0]

    @property
    def friends_count(self) -> int:
        return self._world._counts(self.index)[1]

    @property
    def statuses_count(self) -> int:
        return self._world._counts(self.index)[2]

    @property
    def listed_count(self) -> int:
        """The lists the account is a member of (``/2/users/:id/list_memberships``)."""
        return len(self._world.membership_ids(self.id))

    @property
    def favourites_count(self) -> int:
        """The tweets the account liked (``/2/users/:id/liked_tweets``; v2's ``like_count``)."""
        return len(self._world.liked_ids(self.id))


@dataclass(frozen=True, slots=True)
class Tweet:
    """A tweet. ``source`` is the v1.1 HTML anchor (``source_name`` is its text, the v2 form).

    ``text`` contains every hashtag as ``"#" + tag``, every mention as
    ``"@" + screen_name`` and every ``url`` verbatim. Retweets carry the
    original's text after ``"RT @name: "`` and the original's entities.
    """

    id: int
    author_id: int
    created_at: datetime
    text: str
    lang: str
    source: str
    in_reply_to_status_id: int | None
    in_reply_to_user_id: int | None
    in_reply_to_screen_name: str | None
    retweeted_status_id: int | None
    quoted_status_id: int | None
    conversation_id: int
    hashtags: list[str]
    mentions: list[int]
    urls: list[tuple[str, str]]
    deleted: bool
    possibly_sensitive: bool
    #: the world (or evolved view) the tweet was read from: its metrics are that world's
    _world: Any = field(default=None, repr=False, compare=False, hash=False)

    # public_metrics, read on demand (the engagement index is built on first use):
    # what the engagement endpoints list; a retweet shows its original's retweet_count
    def metrics(self) -> Any:
        """``Metrics(retweets, likes, replies, quotes)`` at once (see the properties below)."""
        world = self._world
        if world is None:
            return _NO_METRICS
        if self.retweeted_status_id:
            return _NO_METRICS._replace(retweets=world.metrics(self.retweeted_status_id).retweets)
        return world.metrics(self.id)

    @property
    def retweet_count(self) -> int:
        return 0 if self._world is None else self._world.metrics(self.retweeted_status_id or self.id).retweets

    @property
    def favorite_count(self) -> int:
        return 0 if self._world is None or self.retweeted_status_id else self._world.metrics(self.id).likes

    @property
    def reply_count(self) -> int:
        return 0 if self._world is None or self.retweeted_status_id else self._world.metrics(self.id).replies

    @property
    def quote_count(self) -> int:
        return 0 if self._world is None or self.retweeted_status_id else self._world.metrics(self.id).quotes

    @property
    def source_name(self) -> str:
        return self.source.rsplit("</a>", 1)[0].rsplit(">", 1)[-1]


class _Metrics(NamedTuple):  # = .engagement.Metrics (records imports nothing of the world)
    retweets: int
    likes: int
    replies: int
    quotes: int


_NO_METRICS = _Metrics(0, 0, 0, 0)


class _Timeline(NamedTuple):
    length: int  # tweets ever posted (deleted ones included)
    base: int  # ms (unix) of tweet 0 before jitter
    gap: int  # ms between consecutive tweets before jitter (jitter < gap // 2)


class _Core(NamedTuple):
    kind: int
    ref: tuple[int, int] | None  # (index, seq) replied to / retweeted / quoted
    words: tuple[str, ...]  # lowercase; empty for retweets (the original's words are used)
    cc: int | None  # index of an inline "cc @name" mention
    tags: tuple[str, ...]
    lang: str
    rnd: bytes  # the tweet's remaining randomness (counts, urls)
