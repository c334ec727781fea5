"""The sandbox's synthetic Twitter world: deterministic, lazily generated.

``World(seed, users)`` precomputes nothing per user. Every fact is derived on
demand from ``seed`` by hashing, so a world of four million users constructs
as fast as one of ten, and two worlds with the same ``(seed, users,
search_users)`` answer every question identically. (Some answers are sped up
by per-world tables built on first use, see "Counting" below; they hold
derived values only and never change an answer.)

Users
    Indices ``0 .. users-1``, ordered by popularity (index 0 is the most
    followed; it is ``@jack``, id 12).  Ids come in three families so that
    clients meet small ids, 32-bit-overflowing ids and ids above 2**53:
    ``index % 3 == 0`` -> 12 .. 1e9 (2006-2009 accounts), ``== 1`` -> 1e9 ..
    ~6.5e9 (2010-2016), ``== 2`` -> real snowflake ids ``(ms << 22) | index``
    (2016-2024, ~7.4e17 .. 1.8e18).  Each family is an arithmetic progression
    with hashed jitter smaller than the step, so ``index_of`` inverts an id in
    O(1) and re-derives it to reject ids that never existed.  Screen names
    are ``<words><index>`` (``jack`` for index 0): unique by construction and
    inverted by reading the trailing number.

Follow graph
    Tier ``t`` holds indices ``[2**t - 1, 2**(t+1) - 1)`` (``S = 2**t``
    positions, the last tier cut at ``users``).  User ``v`` follows position
    ``j`` of tier ``t`` iff ``(a_t*j + b_t*v + c_t) mod S < K_t(v)`` with
    ``a_t, b_t`` odd (hence invertible mod ``S``).  ``K_t(v)`` is
    ``floor(x) + [coin < frac(x)]``, ``x = Q0 * act(v) * 2**((1-ALPHA)*t)``
    (capped at ``S``): each tier gets ``~Q0*act*2**(-ALPHA*t)`` of its members,
    so in-degree falls as a power of rank and out-degree follows the
    per-user activity factor ``act`` (six classes, plus rare "heavy"
    followers).  Forward (friends): for ``w < K`` solve for ``j`` -- O(K) per
    tier.  Reverse (followers of ``j``): for ``w < Kmax_t`` the followers
    with that ``w`` are one residue class of ``v`` mod ``S``; walk it and keep
    the ``v`` whose own ``K_t(v) > w``.  Both directions test the same
    predicate, so they are exact inverses.  Heavy followers and indices < 64
    (which carry forced states) are handled apart ("specials": per tier, a
    list sorted by ``b*v + c mod S``, bisected for the window of position
    ``j``), so they do not inflate ``Kmax_t`` for everyone.  Per-user bytes
    (activity class, account state, one coin per tier) come from SHAKE-128
    blocks, so whole tiers are read with bytes slices instead of hashing
    users one at a time.

Tweets
    User ``u`` has ``L(u)`` tweets (heavy-tailed, up to ~6,000) at times
    ``base + s*gap + jitter(s)`` with ``jitter < gap/2``; a tweet id is
    ``(ms_since_twitter_epoch << 22) | u``, so ids sort by time and decode in
    O(1) to ``(u, s)``.  Text, kind (original, reply, retweet, quote) and
    the referenced tweet are derived from ``(u, s)``; referenced tweets are
    earlier, visible tweets of other users (preferably friends).

Counting and lazily built tables
    ``counts()`` (the ``*_count`` fields) never builds the lists it counts.
    A few per-world tables are built on first use, each in O(users) mostly
    C-speed bytes work: a code byte per user (activity class, or listed
    special, or unlisted), per-tier prefix sums of "listed" in friend-window
    order (friends count = one window sum per tier, O(tiers)), and, for tiers
    whose users are counted often, every position's follower count (the
    histogram of ``b*v + c mod S`` per activity class, window-summed at once
    with big-int lanes; see ``_follower_count_table``; before that, followers
    are counted by the reverse walk, specials by bisecting a sorted list).
    Statuses are the timeline length minus the deleted bytes of the tweet
    metadata. Small tiers' follower lists are cut out of the code and coin
    arrays with stride-``S`` slices; long id lists read an id table (worlds
    up to 2M users). ``followers()``, ``following()`` and ``timeline()``
    return the cached tuples themselves (immutable: no copy per call).

Search
    The corpus is the non-deleted tweets of visible users with index <
    ``search_users``; inverted indexes (recent 7 days, full archive) are
    built on first use and kept.

The package: :mod:`.common` (constants, hashing), :mod:`.vocabulary`, :mod:`.records`
(``User``, ``Tweet``), and the parts of :class:`World`, one mixin each:
:mod:`.generator` (accounts), :mod:`.graph` (follow lists), :mod:`.counting`,
:mod:`.timelines`, :mod:`.tweets`, :mod:`.search_index` with :mod:`.query`
(the query language), :mod:`.engagement` (replies, quotes, retweets, likes inverted)
and :mod:`.lists`; :mod:`.core` puts them together. :mod:`.evolution` is the
world after its creation: generations of new tweets and follow changes, as
views (``Evolution(world).at(g)``) with the same methods.
"""

from __future__ import annotations

from .common import MAX_USERS, TIMELINE_CAP, TWITTER_EPOCH_MS, WORLD_NOW
from .core import World
from .records import Counts, Tweet, User
from .vocabulary import HASHTAGS, VOCABULARY, tokenize

__all__ = [
    "HASHTAGS",
    "MAX_USERS",
    "TIMELINE_CAP",
    "TWITTER_EPOCH_MS",
    "VOCABULARY",
    "WORLD_NOW",
    "Counts",
    "Tweet",
    "User",
    "World",
    "tokenize",
]
