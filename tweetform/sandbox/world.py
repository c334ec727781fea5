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
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
import sys
import threading
from array import array
from bisect import bisect_left, bisect_right
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from itertools import accumulate, compress
from operator import itemgetter as _pick
from typing import Literal, NamedTuple

__all__ = [
    "MAX_USERS",
    "TIMELINE_CAP",
    "TWITTER_EPOCH_MS",
    "WORLD_NOW",
    "Counts",
    "Tweet",
    "User",
    "World",
    "tokenize",
]

TWITTER_EPOCH_MS = 1288834974657
WORLD_NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)
MAX_USERS = 1 << 22  # tweet ids keep the author index in 22 bits
TIMELINE_CAP = 3200
RECENT_DAYS = 7

_BIG_ENDIAN = sys.byteorder == "big"
assert array("I").itemsize == 4 and array("H").itemsize == 2  # lanes and tweet metas assume these
_M64 = (1 << 64) - 1
_GOLD = 0x9E3779B97F4A7C15
_M22 = (1 << 22) - 1
_MIN = 60_000
_DAY = 86_400_000


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


_NOW_MS = _ms(WORLD_NOW)
_T2006 = _ms(datetime(2006, 3, 21, 20, 50, 14, tzinfo=timezone.utc))  # jack's first day
_T2010 = _ms(datetime(2010, 1, 1, tzinfo=timezone.utc))
_T2011 = _ms(datetime(2011, 1, 1, tzinfo=timezone.utc))
_T2016 = _ms(datetime(2016, 6, 1, tzinfo=timezone.utc))
_T2024 = _ms(datetime(2024, 10, 1, tzinfo=timezone.utc))

# --- account states -------------------------------------------------------------
NORMAL, PROTECTED, SUSPENDED, DELETED = 0, 1, 2, 3
# state byte: < 5 suspended (2.0%), < 8 deleted (1.2%), < 16 protected (3.1%).
_LISTED_MIN_BYTE = 8
_SPECIAL_BELOW = 64  # indices below this have hand-placed states (see _FORCED_STATE)
_FORCED_STATE = {11: PROTECTED, 23: PROTECTED, 41: PROTECTED,
                 13: SUSPENDED, 29: SUSPENDED, 47: SUSPENDED,
                 17: DELETED, 37: DELETED, 53: DELETED}
_FORCED_LONG = (3, 5, 31)  # > 3,200 tweets
_FORCED_HEAVY = {7: 3, 19: 2}  # index -> heavy activity class (hundreds of friends)

# --- follow graph parameters ------------------------------------------------------
Q0 = 0.9  # fraction scale of the top tier; ~57% of users follow index 0
ALPHA = 0.8  # in-degree ~ rank**-ALPHA
# (activity factor, weight out of 256): lurkers to avid followers; mean ~1.1
_ACT_CLASSES = ((0.1, 40), (0.3, 60), (0.7, 70), (1.5, 50), (3.0, 26), (6.0, 10))
_HEAVY_ACTS = (10.0, 15.0, 25.0, 40.0)
_CLASS_OF = bytes(i for i, (_, w) in enumerate(_ACT_CLASSES) for _ in range(w))
assert len(_CLASS_OF) == 256
_COIN_BLOCK = 256  # users per coin block; tiers with S <= this are walked by slicing
_UCS_BLOCK = 4096  # users per (class, state) block
# The per-user "code" byte (World._codes): the activity class (0..5) of a listed user
# that is not special, _SPECIAL_CODE for listed special users (indices < 64, heavy
# followers), _UNLISTED_CODE for suspended/deleted users (and padding past the last user).
_N_CLASSES = len(_ACT_CLASSES)
_SPECIAL_CODE, _UNLISTED_CODE = 254, 255
_UNLISTED_OR = bytes(0xFF if b < _LISTED_MIN_BYTE else 0 for b in range(256))  # state byte -> OR mask
_LISTED01 = bytes(0 if b == _UNLISTED_CODE else 1 for b in range(256))  # code -> listed (0/1)
_IS_CLASS = tuple(bytes(int(b == e) for b in range(256)) for e in range(_N_CLASSES))  # code -> [code == e]
_ID_TABLE_MAX = 1 << 21  # worlds up to this size keep an id table (8 bytes a user) for long lists
_SLICE_BELOW = 32  # list a tier's followers by slicing when it has >= this many users per residue
_BULK_AFTER = 0.5  # build a tier's follower-count table once its walks cost ~ this * users candidates


@lru_cache(maxsize=None)
def _coin_below(thr: int) -> bytes:
    """translate() table: coin byte -> 1 if coin < thr else 0."""
    return bytes(int(b < thr) for b in range(256))


def _lanes(b: bytes, width: int) -> int:
    """``b`` as an int with one ``width``-byte little-endian lane per byte of ``b``."""
    if width == 1:
        return int.from_bytes(b, "little")
    wide = bytearray(width * len(b))
    wide[0::width] = b
    return int.from_bytes(wide, "little")


def _int_lanes(values: object, width: int) -> int:
    """A sequence of ints < 256**width as one int with ``width``-byte lanes (lane k = values[k])."""
    if width == 1:
        return int.from_bytes(bytes(values), "little")  # type: ignore[call-overload]
    arr = array("H" if width == 2 else "I", values)  # type: ignore[arg-type]
    if _BIG_ENDIAN:
        arr.byteswap()
    return int.from_bytes(arr.tobytes(), "little")


def _u32(values: object) -> array:
    return array("I", values)  # type: ignore[arg-type]


def _mix(x: int) -> int:
    """splitmix64 finaliser: a cheap, well-spread 64-bit hash of a 64-bit int."""
    x &= _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _unit(h: int) -> float:
    return (h >> 11) / 9007199254740992.0  # [0, 1)


def _loguniform(h: int, lo: float, hi: float) -> float:
    return lo * math.exp(_unit(h) * math.log(hi / lo))


# --- vocabulary -----------------------------------------------------------------------
# Ordered by rank; weights are Zipf-like. "data" and "research" rank high on
# purpose so that searches for them always return many pages.
_WORDS = """
the to and a of in is for on this data that with it new we are be you our at research
from i my by about more how today science will your all great not can so have just one
an study what has work open now time learning out us people they paper team day as
project if some here was thanks know first see who get year like model but up help read
week public health climate world use analysis free live good best check network code
python join look find share need results via university information support report
news city students big school love back make really still thread policy energy women
power history future media social local life story global water make change think
always art music book books video post blog talk conference workshop deadline grant
funding lab field survey sample method methods theory evidence review journal preprint
dataset datasets model models training deep machine neural language text image images
map maps software tool tools library package release version update bug fix test tests
cloud server web app apps mobile phone design user users community event events summer
winter spring autumn morning night weekend coffee tea food lunch dinner home office
remote hybrid job jobs hiring career phd postdoc professor lecture course class exam
student teacher education learning reading writing draft submit submitted accepted
rejected published citation citations impact metric metrics trend trends growth rate
rates price prices market economy inflation budget tax vote election campaign government
law court rights justice freedom peace war border migration refugee housing transport
bike train bus car traffic road air pollution carbon emissions forest ocean river rain
heat storm flood drought fire species birds wildlife nature park garden plant plants
tree trees soil farm farmers crop crops genome gene genes cell cells protein virus
vaccine hospital patients doctor nurse care mental sleep exercise running football
soccer game games team season match goal player players coach fans stadium festival
film movie series episode podcast radio photo photos camera light space planet moon
star stars telescope galaxy physics chemistry biology math statistics survey chart
graph visualization dashboard pipeline scraping archive archives collection museum
""".split()
_RARE_WORDS = """
zeitgeist quokka serendipity petrichor halcyon mellifluous sonder limerence vellichor
apricity hiraeth susurrus defenestration kerfuffle brouhaha flummox gobbledygook lollygag
snollygoster widdershins bumfuzzle cattywampus taradiddle collywobbles skedaddle
hullabaloo nincompoop quixotic palimpsest syzygy zugzwang bioluminescence tessellation
axolotl pangolin narwhal capybara
""".split()
VOCABULARY: tuple[str, ...] = tuple(dict.fromkeys(_WORDS)) + tuple(_RARE_WORDS)


def _zipf_table(words: int, rare: int, size: int) -> tuple[int, ...]:
    """A ``size``-slot table of word indices, each common word's share ~1/(rank+2.7); rare words get one slot."""
    weights = [1.0 / (r + 2.7) for r in range(words)]
    room = size - rare
    total = sum(weights)
    slots = [max(1, int(w / total * room)) for w in weights]
    slots[0] += room - sum(slots)  # rounding remainder goes to "the"
    table = [i for i, n in enumerate(slots) for _ in range(n)] + list(range(words, words + rare))
    assert len(table) == size
    return tuple(table)


_N_COMMON = len(VOCABULARY) - len(_RARE_WORDS)
_WORD_TABLE: tuple[str, ...] = tuple(VOCABULARY[i] for i in _zipf_table(_N_COMMON, len(_RARE_WORDS), 65536))

HASHTAGS: tuple[str, ...] = (
    "DataScience", "OpenScience", "AI", "Python", "MachineLearning", "Research", "Climate",
    "AcademicTwitter", "PhD", "OpenData", "Science", "Rstats", "NLP", "Statistics", "BigData",
    "DeepLearning", "Astronomy", "Biology", "Health", "Elections", "Music", "Football", "Art",
    "Photography", "Travel", "Books", "Coffee", "MondayMotivation", "FridayFeeling", "TBT",
    "Startup", "Gaming", "Design", "Education", "CitizenScience", "DataViz", "Ecology",
)
_TAG_TABLE: tuple[str, ...] = tuple(
    t for r, t in enumerate(HASHTAGS) for _ in range(max(1, round(64 / (r + 1.5))))
)

_FIRST = (
    ("Anna", "Anna"), ("Ben", "Ben"), ("Carla", "Carla"), ("David", "David"), ("Emma", "Emma"),
    ("Farid", "Farid"), ("Grace", "Grace"), ("Hiro", "Hiro"), ("Ines", "Ines"), ("José", "Jose"),
    ("Kofi", "Kofi"), ("Lena", "Lena"), ("Maya", "Maya"), ("Noah", "Noah"), ("Olga", "Olga"),
    ("Pablo", "Pablo"), ("Quinn", "Quinn"), ("Rosa", "Rosa"), ("Sam", "Sam"), ("Tariq", "Tariq"),
    ("Uma", "Uma"), ("Victor", "Victor"), ("Wei", "Wei"), ("Ximena", "Ximena"), ("Yusuf", "Yusuf"),
    ("Zoë", "Zoe"), ("Søren", "Soren"), ("Chloé", "Chloe"), ("Łukasz", "Lukasz"), ("Aiko", "Aiko"),
    ("Priya", "Priya"), ("Mateo", "Mateo"), ("Amara", "Amara"), ("Leo", "Leo"), ("Nina", "Nina"),
    ("Omar", "Omar"), ("Sofia", "Sofia"), ("Ravi", "Ravi"), ("Elif", "Elif"), ("Jonas", "Jonas"),
)
_LAST = (
    ("Smith", "Smith"), ("García", "Garcia"), ("Kim", "Kim"), ("Müller", "Muller"), ("Okafor", "Okafor"),
    ("Rossi", "Rossi"), ("Tanaka", "Tanaka"), ("Nguyen", "Nguyen"), ("Silva", "Silva"), ("Novak", "Novak"),
    ("Khan", "Khan"), ("Dubois", "Dubois"), ("Larsen", "Larsen"), ("Cohen", "Cohen"), ("Patel", "Patel"),
    ("Ivanova", "Ivanova"), ("Mensah", "Mensah"), ("Lopez", "Lopez"), ("Chen", "Chen"), ("Brown", "Brown"),
    ("Yilmaz", "Yilmaz"), ("Kowalski", "Kowalski"), ("Haddad", "Haddad"), ("Sato", "Sato"), ("Reyes", "Reyes"),
)
_NOUNS = ("Data", "Lab", "News", "Code", "Maps", "Stats", "Bytes", "Notes", "Pixel", "Signal",
          "Field", "Atlas", "Orbit", "Daily", "Civic", "Green", "Open", "Moss", "River", "Cloud")
_EMOJI = (" 🌱", " 📊", " ✨", " 🔭", " 🧬", " ☕")
_ROLES = ("Researcher", "PhD student", "Data scientist", "Journalist", "Engineer", "Professor",
          "Writer", "Designer", "Developer", "Librarian", "Statistician", "Ecologist", "Teacher",
          "Photographer", "Nurse", "Policy analyst", "Archivist", "Student")
_LOCATIONS = ("Berlin", "New York, NY", "London", "Tokyo", "Paris", "São Paulo", "Lagos", "Mumbai",
              "Sydney", "Toronto", "Mexico City", "Madrid", "Nairobi", "Seoul", "Istanbul", "Oslo",
              "San Francisco, CA", "Buenos Aires", "Cape Town", "Earth", "somewhere online")
_SOURCES = (
    ("Twitter Web App", "https://mobile.twitter.com"),
    ("Twitter for iPhone", "http://twitter.com/download/iphone"),
    ("Twitter for Android", "http://twitter.com/download/android"),
    ("TweetDeck", "https://about.twitter.com/products/tweetdeck"),
    ("Buffer", "https://buffer.com"),
    ("IFTTT", "https://ifttt.com"),
)
_LANGS = (("en", 205), ("es", 15), ("fr", 12), ("ja", 8), ("und", 16))
_LANG_OF = tuple(code for code, w in _LANGS for _ in range(w))
assert len(_LANG_OF) == 256
_SOURCE_HTML = tuple(f'<a href="{url}" rel="nofollow">{name}</a>' for name, url in _SOURCES)

# --- tweets ---------------------------------------------------------------------------
ORIGINAL, REPLY, RETWEET, QUOTE = 0, 1, 2, 3
_KIND_OF = (ORIGINAL,) * 180 + (REPLY,) * 30 + (RETWEET,) * 30 + (QUOTE,) * 16
_DELETED_BELOW = 3  # tweet-meta byte < 3: deleted (~1.2%)
_DELETED_BYTES = bytes(range(_DELETED_BELOW))
_NTAGS = (0, 0, 0, 0, 0, 0, 1, 1, 1, 2)  # hashtags per tweet
_IS_KEY = {REPLY: "is:reply", RETWEET: "is:retweet", QUOTE: "is:quote"}
_PUNCT = (".", "!", "?", "", ".", ":")

_URL_RE = re.compile(r"https?://\S+")
_TOKEN_RE = re.compile(r"[a-z0-9_]+")
_B62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


@lru_cache(maxsize=4096)
def _tag_strings(tags: tuple[str, ...]) -> tuple[str, str]:
    """(" tag1 tag2", " #tag1 #tag2") in lowercase: a search line's hashtag tokens and keys."""
    low = [t.lower() for t in tags]
    return "".join(" " + t for t in low), "".join(" #" + t for t in low)


def tokenize(text: str) -> list[str]:
    """The word tokens search matches: lowercase ``[a-z0-9_]+`` runs, URLs removed.

    ``#DataScience`` yields ``datascience`` and ``@jack`` yields ``jack``.
    """
    return _TOKEN_RE.findall(_URL_RE.sub(" ", text.lower()))


_B62_PAIRS = tuple(_B62[r % 62] + _B62[r // 62] for r in range(62 * 62))


def _b62(h: int, n: int) -> str:
    """The ``n`` least significant base-62 digits of ``h``, least significant first."""
    out = []
    for _ in range(n >> 1):
        h, r = divmod(h, 3844)
        out.append(_B62_PAIRS[r])
    if n & 1:
        out.append(_B62[h % 62])
    return "".join(out)


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
    lists, cached), so building a ``User`` stays cheap."""

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
    listed_count: int
    favourites_count: int
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
    retweet_count: int
    favorite_count: int
    reply_count: int
    quote_count: int
    deleted: bool
    possibly_sensitive: bool

    @property
    def source_name(self) -> str:
        return self.source.rsplit("</a>", 1)[0].rsplit(">", 1)[-1]


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


_new_core = tuple.__new__  # builds a _Core without NamedTuple's Python-level __new__ (hot path)
_new_tl = tuple.__new__
_u16x32 = struct.Struct("=32H").unpack  # a 64-byte digest as 32 native-order uint16 (as memoryview.cast("H"))
_blake2b = hashlib.blake2b
_LN_LISTED = math.log(5.0 / 0.2)  # _loguniform(h, 0.2, 5.0) == 0.2 * exp(_unit(h) * _LN_LISTED)
_LN_FAVS = math.log(60_000.0 / 1.0)
_LN_RT = math.log(30.0 / 0.02)  # retweet and favorite counts
_LN_RQ = math.log(20.0 / 0.05)  # reply and quote counts
_INV16 = 1.0 / 65536
_INV53 = 1.0 / 9007199254740992.0  # (h >> 11) * _INV53 == _unit(h) exactly (a power of two)
# math.log(hi / lo) of _gen_tl's log-uniform draws (lengths, then offsets and gaps)
_LN_TL = tuple(math.log(hi / lo) for lo, hi in (
    (50, 1000), (1, 61), (60, 300), (300, 2000), (2000, 6000),
    (10 * _MIN, 4 * _DAY), (10 * _DAY, 3 * 365 * _DAY), (20 * _MIN, 10 * _DAY)))


class _SearchIndex:
    """The search corpus as one string, a line per tweet (newest first).

    A line holds the tweet's tokens in text order, then its operator keys
    (``from:<index>``, ``lang:xx``, ``#tag``, ``@name``, ``is:...``,
    ``to:<index>``). Looking a key or a phrase up is a C-speed substring scan
    for ``" key "`` (phrases are exact, with no tweet re-rendered), and the
    line numbers found are cached per key.
    """

    def __init__(self, tids: array, lines: list[str]) -> None:
        self.tids = tids
        self.blob = "".join(lines)
        self.starts = array("q", accumulate(map(len, lines), initial=0))
        self._cache: dict[str, frozenset[int]] = {}
        self._lock = threading.Lock()

    def lines_with(self, needle: str) -> frozenset[int]:
        """Line numbers (corpus positions) whose text contains ``needle`` (which starts and ends with a space)."""
        hit = self._cache.get(needle)
        if hit is None:
            blob, starts, find = self.blob, self.starts, self.blob.find
            out = []
            i = find(needle)
            while i >= 0:
                line = bisect_right(starts, i) - 1
                out.append(line)
                i = find(needle, starts[line + 1])
            hit = frozenset(out)
            with self._lock:
                if len(self._cache) >= 4096:
                    self._cache.clear()
                self._cache[needle] = hit
        return hit


# --- the world ------------------------------------------------------------------------------


class World:
    """A deterministic synthetic Twitter. See the module docstring for the construction.

    All ids in and out are user/tweet ids (ints), never indices, except
    ``index_of`` and ``User.index``.
    """

    now: datetime = WORLD_NOW

    def __init__(self, seed: int = 1, users: int = 100_000, *, search_users: int = 2_000) -> None:
        if not isinstance(users, int) or not 1 <= users <= MAX_USERS:
            raise ValueError(f"users must be an int in 1..{MAX_USERS}, got {users!r}")
        if not isinstance(search_users, int) or search_users < 0:
            raise ValueError(f"search_users must be a non-negative int, got {search_users!r}")
        self.seed = seed
        self.users = users
        self.search_users = search_users
        self.now_ms = _NOW_MS
        key = hashlib.blake2b(f"tweetform-world:{seed}".encode(), digest_size=32).digest()
        self._bkey = key[:16]
        hkeys = [int.from_bytes(key[16:24], "little")]
        while len(hkeys) < 16:
            hkeys.append(_mix(hkeys[-1] + _GOLD))
        (self._k_id, self._k_name, self._k_prof, self._k_tl, self._k_ref, self._k_graph,
         self._k_misc, *_) = hkeys
        self._tiers = users.bit_length()  # index i is in tier (i+1).bit_length()-1
        self._build_tiers()
        # expected followers per tier (popularity: listed counts, tweet engagement)
        self._tier_ef = tuple(max(1.0, users * Q0 * 2.0 ** (-ALPHA * t)) for t in range(self._tiers))
        # Id families: steps are spread to use the whole id range of each family.
        self._small_step = max(173, (10**9 - 100) // ((users + 2) // 3 + 1))
        self._mid_step = max(4093, 5_500_000_000 // ((users + 1) // 3 + 1))
        # Heavy followers: index % P == r (P a power of two, ~128-256 of them in big worlds).
        p = 64
        while users // p > 256:
            p *= 2
        self._heavy_p = p
        self._heavy_r = self._k_graph % p
        # Caches: bounded, per instance (a module-level cache would pin every World).
        self._ucs_block = lru_cache(maxsize=1100)(self._gen_ucs_block)
        self._coin_block = lru_cache(maxsize=512)(self._gen_coin_block)
        self._tier_coins = lru_cache(maxsize=4)(self._gen_tier_coins)
        self._friends_idx = lru_cache(maxsize=1 << 15)(self._gen_friends_idx)
        self._friends_ids = lru_cache(maxsize=4096)(self._gen_friends_ids)
        self._followers_ids = lru_cache(maxsize=1024)(self._gen_followers_ids)
        self._counts = lru_cache(maxsize=1 << 16)(self._gen_counts)
        self._tl = lru_cache(maxsize=1 << 16)(self._gen_tl)
        self._tmeta = lru_cache(maxsize=2048)(self._gen_tmeta)
        self._timeline_ids = lru_cache(maxsize=1024)(self._gen_timeline_ids)
        self._ref = lru_cache(maxsize=1 << 17)(self._gen_ref)
        self._user = lru_cache(maxsize=1 << 14)(self._gen_user)
        self._screen_name = lru_cache(maxsize=1 << 16)(self._gen_screen_name)
        self._tuser = lru_cache(maxsize=4096)(self._gen_tuser)
        self._index_lock = threading.Lock()
        self._indexes: dict[bool, _SearchIndex] = {}
        self._examples: dict[str, list[int]] | None = None
        self._special_list: tuple[tuple[int, int, bytes], ...] | None = None
        # Lazily built graph tables (see "Counting" in the module docstring). Each is
        # built whole, then published by one assignment, so racing threads at worst
        # build one twice.
        self._codes_arr: bytes | None = None
        self._id_table: array | None = None
        self._walk_tbls: list[tuple[bytes, ...] | None] = [None] * self._tiers
        self._slice_tbls: list[tuple[bytes, ...] | None] = [None] * self._tiers
        self._spec_tiers: list[tuple[tuple[int, ...], tuple[tuple[int, int, int], ...], int] | None] = [None] * self._tiers
        self._fcount_tbl: list[bytes | array | None] = [None] * self._tiers
        self._fcount_work = [0] * self._tiers
        self._friend_pref: list[array | None] = [None] * self._tiers
        self._friend_work = 0  # friend positions tested one by one so far (see _friends_count)

    def __repr__(self) -> str:
        return f"World(seed={self.seed!r}, users={self.users}, search_users={self.search_users})"

    # A World is a pure function of its arguments: copies are the same world.
    def __reduce__(self) -> tuple[object, tuple[int, int, int]]:
        return (_rebuild, (self.seed, self.users, self.search_users))

    def __copy__(self) -> World:
        return self

    def __deepcopy__(self, memo: dict) -> World:
        return self

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
        ef = self._tier_ef[(i + 1).bit_length() - 1]  # _expected_followers(i)
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
            # _loguniform(h2, 0.2, 5.0) and _loguniform(_mix(h2), 1.0, 60_000.0), inlined: same values
            int(ef * 0.01 * (0.2 * math.exp((h2 >> 11) * _INV53 * _LN_LISTED))),  # listed_count
            int(math.exp((_mix(h2) >> 11) * _INV53 * _LN_FAVS)) - 1,  # favourites_count
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
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be an int >= 1, got {depth!r}")
        if direction not in ("friends", "followers"):
            raise ValueError(f"direction must be 'friends' or 'followers', got {direction!r}")
        if max_users is not None and max_users < 0:
            raise ValueError(f"max_users must be >= 0, got {max_users!r}")
        lists = self._friends_ids if direction == "friends" else self._followers_ids
        seen: set[int] = set()
        queue: deque[tuple[int, int]] = deque()
        for sid in seed_ids:
            if sid not in seen:
                seen.add(sid)
                queue.append((sid, 1))
        order: list[int] = []
        while queue and (max_users is None or len(order) < max_users):
            uid, level = queue.popleft()
            order.append(uid)
            if level >= depth:
                continue
            i = self.index_of(uid)
            if i is None or self._state(i) != NORMAL:
                continue
            for x in lists(i):
                if x not in seen:
                    seen.add(x)
                    queue.append((x, level + 1))
        return order

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

    # ---- tweets ---------------------------------------------------------------------------------

    def _popular_index(self, h: int) -> int:
        """A user index biased to popular accounts (log-uniform over ranks)."""
        return min(self.users - 1, int(self.users ** _unit(h)) - 1)

    def _seq_before(self, v: int, t_ms: int) -> int | None:
        """v's newest non-deleted tweet strictly before ``t_ms``."""
        tl = self._tl(v)
        if tl.length == 0 or t_ms <= tl.base:
            return None
        meta = self._tmeta(v)
        s = min(tl.length - 1, (t_ms - tl.base) // tl.gap)
        for _ in range(6):
            if s < 0:
                return None
            if self._time(v, s, tl, meta) < t_ms and meta[8 * s + 4] >= _DELETED_BELOW:
                return s
            s -= 1
        return None

    def _kind_byte(self, u: int, s: int) -> int:
        return _KIND_OF[self._tmeta(u)[8 * s + 5]]

    def _gen_ref(self, u: int, s: int) -> tuple[int, int] | None:
        """The tweet (index, seq) that tweet (u, s) replies to / retweets / quotes, or None
        (an original, or no suitable earlier tweet: then it is an original too).
        Targets are visible, earlier, non-deleted, by another user, never retweets."""
        if self._kind_byte(u, s) == ORIGINAL:
            return None
        tl = self._tl(u)
        t_ms = self._time(u, s, tl, self._tmeta(u))
        friends = self._friends_idx(u)
        h = self._h(self._k_ref, (u << 13) | s)
        # Two tries: a friend, then one of the famous accounts (indices < 64 all have
        # long timelines). Old tweets of long timelines often find neither: originals.
        for v in (friends[h % len(friends)] if friends else -1, (h >> 32) % min(self.users, _SPECIAL_BELOW)):
            if v < 0 or v == u or self._state(v) != NORMAL:
                continue
            ts = self._seq_before(v, t_ms)
            if ts is None:
                continue
            if self._kind_byte(v, ts) == RETWEET:
                orig = self._ref(v, ts)
                if orig is not None:  # point at the original, as the API does
                    if orig[0] == u:
                        continue
                    return orig
            return v, ts
        return None

    def _core(self, u: int, s: int, meta: bytes | None = None) -> _Core:
        """What a tweet says, before rendering: shared by ``tweet()`` and the search index."""
        if meta is None:
            meta = self._tmeta(u)
        o = 8 * s
        kind = _KIND_OF[meta[o + 5]]
        ref = None
        if kind != ORIGINAL:
            ref = self._ref(u, s)
            if ref is None:
                kind = ORIGINAL
        lang = _LANG_OF[meta[o + 6]]
        if kind == RETWEET:
            return _new_core(_Core, (kind, ref, (), None, (), lang, b""))
        rnd = _blake2b(self._bkey + ((u << 32) | s).to_bytes(8, "little")).digest()
        vals = _u16x32(rnd)
        words = _pick(*vals[1 : 6 + vals[0] % 14])(_WORD_TABLE)  # 5..18 words
        cc = None
        if vals[23] % 10 == 0:  # an inline mention of someone else
            mv = self._popular_index(_mix(vals[23] * 65537 + vals[24]))
            if mv != u and (ref is None or mv != ref[0]) and self._state(mv) == NORMAL:
                cc = mv
        tags: list[str] = []
        for k in range(_NTAGS[vals[20] % 10]):
            tag = _TAG_TABLE[vals[21 + k] % len(_TAG_TABLE)]
            if tag not in tags:
                tags.append(tag)
        return _new_core(_Core, (kind, ref, words, cc, tuple(tags), lang, rnd))

    def _tokens(self, u: int, s: int, c: _Core | None = None) -> tuple[list[str], list[str], list[str], str]:
        """``(tokenize(text), lowercase hashtags, lowercase mentioned names, lang)`` without
        rendering the text. Must agree with ``_tweet``: the tests check it through search."""
        if c is None:
            c = self._core(u, s)
        if c.kind == RETWEET:
            toks, tags, names, lang = self._tokens(*c.ref)  # type: ignore[misc]
            name = self._screen_name(c.ref[0]).lower()  # type: ignore[index]
            return ["rt", name, *toks], tags, [name, *[n for n in names if n != name]], lang
        names = []
        if c.kind == REPLY:
            names.append(self._screen_name(c.ref[0]).lower())  # type: ignore[index]
        toks = [*names, *c.words]
        if c.cc is not None:
            cc = self._screen_name(c.cc).lower()
            names.append(cc)
            toks += ("cc", cc)
        tags = [t.lower() for t in c.tags]
        return toks + tags, tags, names, c.lang

    def tweet(self, tid: int) -> Tweet | None:
        """The tweet with id ``tid`` (deleted ones flagged ``deleted=True``; tweets of suspended or
        deleted accounts are returned too: check the author), or None if it never existed."""
        d = self.decode_tweet_id(tid)
        return None if d is None else self._tweet(*d)

    def _conversation(self, u: int, s: int) -> int:
        ref = self._ref(u, s)
        if ref is not None and self._kind_byte(u, s) == REPLY:
            return self._conversation(*ref)
        return self._tid(u, s)

    def _tweet(self, u: int, s: int) -> Tweet:
        _, base, gap, half, meta, author_id, source, pop = self._tuser(u)
        o = 8 * s
        t_ms = base + s * gap + int.from_bytes(meta[o : o + 4], "little") % half
        tid = ((t_ms - TWITTER_EPOCH_MS) << 22) | u
        src_byte = meta[o + 7]
        if src_byte >= 200:
            source = _SOURCE_HTML[src_byte % len(_SOURCES)]  # v1.1 form; v2 wants source_name
        created = datetime.fromtimestamp(t_ms / 1000, timezone.utc)
        deleted = meta[o + 4] < _DELETED_BELOW
        kind, ref, words, cc, tags, lang, rnd = self._core(u, s, meta)
        if kind == RETWEET:
            orig = self._tweet(*ref)  # type: ignore[misc]
            oname = self._screen_name(ref[0])  # type: ignore[index]
            return Tweet(
                id=tid, author_id=author_id, created_at=created, text=f"RT @{oname}: {orig.text}",
                lang=orig.lang, source=source, in_reply_to_status_id=None, in_reply_to_user_id=None,
                in_reply_to_screen_name=None, retweeted_status_id=orig.id, quoted_status_id=None,
                conversation_id=tid, hashtags=list(orig.hashtags),
                mentions=[orig.author_id] + [m for m in orig.mentions if m != orig.author_id],
                urls=list(orig.urls), retweet_count=orig.retweet_count, favorite_count=0,
                reply_count=0, quote_count=0, deleted=deleted, possibly_sensitive=orig.possibly_sensitive,
            )
        vals = _u16x32(rnd)
        first = words[0]
        text = first.capitalize() + " ".join(words)[len(first):] + _PUNCT[vals[19] % 6]
        mentions: list[int] = []
        urls: list[tuple[str, str]] = []
        in_reply = quoted = None
        conversation = tid
        if kind == REPLY:
            ru = ref[0]  # type: ignore[index]
            in_reply = (self._tid(*ref), self._id(ru), self._screen_name(ru))  # type: ignore[misc]
            text = f"@{in_reply[2]} {text}"
            mentions.append(in_reply[1])
            conversation = self._conversation(*ref)  # type: ignore[misc]
        if cc is not None:
            text += " cc @" + self._screen_name(cc)
            mentions.append(self._id(cc))
        for tag in tags:
            text += " #" + tag
        if vals[31] % 10 == 0:
            short = "https://t.co/" + _b62(int.from_bytes(rnd[48:56], "little"), 10)
            urls.append((short, f"https://example.org/{words[-1]}/{vals[27]}"))
            text += " " + short
        if kind == QUOTE:
            quoted = self._tid(*ref)  # type: ignore[misc]
            short = "https://t.co/" + _b62(int.from_bytes(rnd[56:64], "little"), 10)
            urls.append((short, f"https://twitter.com/{self._screen_name(ref[0])}/status/{quoted}"))  # type: ignore[index]
            text += " " + short
        return Tweet(  # positional (a hot path): the fields in declaration order
            tid,  # id
            author_id,
            created,  # created_at
            text,
            lang,
            source,
            in_reply[0] if in_reply else None,  # in_reply_to_status_id
            in_reply[1] if in_reply else None,  # in_reply_to_user_id
            in_reply[2] if in_reply else None,  # in_reply_to_screen_name
            None,  # retweeted_status_id
            quoted,  # quoted_status_id
            conversation,  # conversation_id
            list(tags),  # hashtags
            mentions,
            urls,
            # _loguniform(v << 48, lo, hi) == lo * exp(v / 65536 * log(hi / lo)), exactly
            int(pop * 0.003 * (0.02 * math.exp(vals[28] * _INV16 * _LN_RT))),
            int(pop * 0.02 * (0.02 * math.exp(vals[29] * _INV16 * _LN_RT))),
            int(pop * 0.002 * (0.05 * math.exp(vals[25] * _INV16 * _LN_RQ))),
            int(pop * 0.0005 * (0.05 * math.exp(vals[26] * _INV16 * _LN_RQ))),
            deleted,
            vals[30] % 100 == 0,  # possibly_sensitive
        )

    # ---- search ---------------------------------------------------------------------------------

    def _index(self, archive: bool) -> _SearchIndex:
        idx = self._indexes.get(archive)
        if idx is None:
            with self._index_lock:
                idx = self._indexes.get(archive)
                if idx is None:
                    idx = self._indexes[archive] = self._build_index(archive)
        return idx

    def _build_index(self, archive: bool) -> _SearchIndex:
        cut = _NOW_MS - RECENT_DAYS * _DAY - TWITTER_EPOCH_MS
        rows: list[tuple[int, str]] = []
        core, tokens = self._core, self._tokens
        for u in range(min(self.search_users, self.users)):
            if self._state(u) != NORMAL:
                continue
            tl = self._tl(u)
            if tl.length == 0:
                continue
            meta = self._tmeta(u)
            base, gap, half = tl.base - TWITTER_EPOCH_MS, tl.gap, tl.gap // 2 or 1
            first = 0 if archive else max(0, min(tl.length, (cut - base) // gap - 1))
            low = 0 if archive else cut
            author = f"from:{u}"
            for s in range(first, tl.length):
                if meta[8 * s + 4] < _DELETED_BELOW:
                    continue
                t = base + s * gap + int.from_bytes(meta[8 * s : 8 * s + 4], "little") % half
                if t < low:
                    continue
                # One line per tweet: its tokens in text order, then its operator
                # keys (which all contain ':', '#' or '@', so a phrase of plain
                # words never runs into them).
                c = core(u, s, meta)
                if c.kind == ORIGINAL and c.cc is None:  # the common case, inlined
                    if c.tags:
                        tag_toks, tag_keys = _tag_strings(c.tags)
                        line = f" {' '.join(c.words)}{tag_toks} {author} lang:{c.lang}{tag_keys} \n"
                    else:
                        line = f" {' '.join(c.words)} {author} lang:{c.lang} \n"
                else:
                    toks, tags, names, lang = tokens(u, s, c)
                    keys = [author, "lang:" + lang, *["#" + x for x in tags], *["@" + n for n in names]]
                    if c.kind != ORIGINAL:
                        keys.append(_IS_KEY[c.kind])
                        if c.kind == REPLY:
                            keys.append(f"to:{c.ref[0]}")  # type: ignore[index]
                    line = f" {' '.join(toks)} {' '.join(keys)} \n"
                rows.append(((t << 22) | u, line))
        rows.sort(reverse=True)
        return _SearchIndex(array("q", [tid for tid, _ in rows]), [line for _, line in rows])

    def search(self, query: str, *, archive: bool = False) -> list[int]:
        """Tweet ids matching ``query``, newest first.

        Corpus: non-deleted tweets of visible (not protected/suspended/deleted)
        users with index < ``search_users``; recent = the 7 days before
        ``now``, archive = all. Query language (case-insensitive): words
        (matched on ``tokenize(text)``), space = AND, ``OR``, ``-term``,
        ``"a phrase"``, ``( ... )``, ``#tag``, ``@name`` (mentions),
        ``from:name``, ``to:name``, ``lang:xx``, ``is:retweet``, ``is:reply``,
        ``is:quote``. AND binds tighter than OR. Raises ValueError for an empty
        or malformed query, an unknown operator, or a group of only negated terms.
        """
        tree = _parse(query)
        idx = self._index(archive)
        hits = _Evaluator(self, idx).eval(tree)
        tids = idx.tids
        return [tids[p] for p in sorted(hits)]

    # ---- test helpers ------------------------------------------------------------------------------

    def examples(self) -> dict[str, list[int]]:
        """A few user ids per trait, for tests and demos (guaranteed non-empty for users >= 2000;
        ``protected``/``suspended``/``deleted``/``long_timeline`` for users >= 64).

        protected, suspended, deleted: account states; long_timeline: visible,
        > 3,200 tweets; many_followers: visible, > 1,000 followers (the most
        followed users when the world is too small for that); many_friends:
        visible, > 200 friends; ordinary: visible, 5-60 friends, 1-3,200 tweets.
        """
        if self._examples is None:
            n = self.users
            ex: dict[str, list[int]] = {
                "protected": [i for i, st in _FORCED_STATE.items() if st == PROTECTED and i < n],
                "suspended": [i for i, st in _FORCED_STATE.items() if st == SUSPENDED and i < n],
                "deleted": [i for i, st in _FORCED_STATE.items() if st == DELETED and i < n],
                "long_timeline": [i for i in _FORCED_LONG if i < n],
            }
            # Counts are exact but cheap here: follower counts stop once the threshold is passed.
            top = [i for i in range(min(n, 12)) if self._state(i) == NORMAL]
            many = [i for i in top if self._followers_count(i, stop=1001) > 1000]
            ex["many_followers"] = (many or top)[:3]
            ex["many_friends"] = [i for i in range(min(n, _SPECIAL_BELOW))
                                  if self._state(i) == NORMAL and self._friends_count(i) > 200][:3]
            ordinary: list[int] = []
            for k in range(n):
                i = (n // 2 + k) % n
                if i < _SPECIAL_BELOW or self._state(i) != NORMAL or self._is_heavy(i):
                    continue
                if not 1 <= self._tl(i).length or not 5 <= self._friends_count(i) <= 60:
                    continue
                if 1 <= self._statuses_count(i) <= TIMELINE_CAP and self._followers_count(i, stop=1) >= 1:
                    ordinary.append(i)
                    if len(ordinary) == 3:
                        break
            ex["ordinary"] = ordinary
            self._examples = {k: [self._id(i) for i in v] for k, v in ex.items()}
        return {k: list(v) for k, v in self._examples.items()}


def _rebuild(seed: int, users: int, search_users: int) -> World:
    return World(seed, users, search_users=search_users)


# --- search query language ---------------------------------------------------------------------

_OPS = ("from", "to", "lang", "is")
_IS_VALUES = ("retweet", "reply", "quote")


class _Node(NamedTuple):
    op: str  # "and", "or", "term"
    children: tuple  # and/or: nodes; term: (kind, value)
    negated: bool = False


#: a term with no searchable characters (punctuation only): matches nothing, and beside
#: other terms of an AND group it is ignored, as the API's tokenizer drops punctuation
_NOTHING = _Node("term", ("nothing", None))


def _lex(query: str) -> list[str]:
    """Split a query into terms, ``"phrase"`` tokens (kept quoted), parentheses and ``-``."""
    out: list[str] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            out.append(ch)
            i += 1
        elif ch == '"' or (ch == "-" and i + 1 < n and query[i + 1] in '"('):
            if ch == "-":
                out.append("-")
                i += 1
                if query[i] == "(":
                    continue
            end = query.find('"', i + 1)
            if end < 0:
                raise ValueError(f"unterminated quote in search query: {query!r}")
            out.append(query[i : end + 1])
            i = end + 1
        else:
            j = i
            while j < n and not query[j].isspace() and query[j] not in '()"':
                j += 1
            out.append(query[i:j])
            i = j
    return out


def _parse(query: str) -> _Node:
    if not isinstance(query, str) or not query.strip():
        raise ValueError("empty search query")
    toks = _lex(query)
    pos = 0

    def peek() -> str | None:
        return toks[pos] if pos < len(toks) else None

    def parse_or() -> _Node:
        nonlocal pos
        groups = [parse_and()]
        while peek() == "OR":
            pos += 1
            groups.append(parse_and())
        return groups[0] if len(groups) == 1 else _Node("or", tuple(groups))

    def parse_and() -> _Node:
        items: list[_Node] = []
        while (tok := peek()) is not None and tok not in ("OR", ")"):
            items.append(parse_unary())
        if not items:
            raise ValueError(f"search query has an empty group or a dangling OR: {query!r}")
        if all(it.negated for it in items):
            raise ValueError(f"search query needs at least one term that is not negated: {query!r}")
        return items[0] if len(items) == 1 else _Node("and", tuple(items))

    def parse_unary() -> _Node:
        nonlocal pos
        tok = toks[pos]
        negated = False
        if tok == "-":
            negated = True
            pos += 1
            tok = peek()  # type: ignore[assignment]
            if tok is None:
                raise ValueError(f"dangling '-' in search query: {query!r}")
        elif tok.startswith("-") and len(tok) > 1:
            negated = True
            tok = tok[1:]
            toks[pos] = tok
        if tok == "(":
            pos += 1
            node = parse_or()
            if peek() != ")":
                raise ValueError(f"unbalanced parentheses in search query: {query!r}")
            pos += 1
        elif tok == ")":
            raise ValueError(f"unbalanced parentheses in search query: {query!r}")
        else:
            pos += 1
            node = _term(tok, query)
        return node._replace(negated=node.negated != negated)

    tree = parse_or()
    if pos != len(toks):
        raise ValueError(f"unbalanced parentheses in search query: {query!r}")
    return tree


def _term(tok: str, query: str) -> _Node:
    if tok.startswith('"'):
        words = tokenize(tok[1:-1])
        if not words:
            return _NOTHING  # like the API: an empty result, not an error
        return _Node("term", ("phrase", tuple(words)))
    if tok in ("-", "OR"):
        raise ValueError(f"misplaced {tok!r} in search query: {query!r}")
    if tok[0] in "#@" and len(tok) > 1:
        return _Node("term", (tok[0], tok[1:].lower()))
    if ":" in tok and not tok.startswith(("http://", "https://")):
        op, _, value = tok.partition(":")
        op = op.lower()
        if op not in _OPS:
            raise ValueError(f"unsupported search operator {op + ':'!r} (supported: from: to: lang: is:)")
        if not value:
            raise ValueError(f"operator {op + ':'!r} needs a value in search query: {query!r}")
        if op == "is" and value.lower() not in _IS_VALUES:
            raise ValueError(f"unsupported is:{value} (supported: is:retweet, is:reply, is:quote)")
        return _Node("term", (op, value.lower()))
    words = tokenize(tok)
    if not words:
        return _NOTHING  # punctuation only ("!!!", "?"): the API answers an empty result
    return _Node("term", ("word", words[0]) if len(words) == 1 else ("phrase", tuple(words)))


class _Evaluator:
    def __init__(self, world: World, idx: _SearchIndex) -> None:
        self.world = world
        self.idx = idx

    def eval(self, node: _Node) -> set[int] | frozenset[int]:
        if node.op == "or":
            out: set[int] = set()
            for child in node.children:
                out |= self._eval_signed(child)
            return out
        if node.op == "and":
            terms = [c for c in node.children if not c.negated and c.children != _NOTHING.children]
            if not terms:
                return frozenset()
            pos = sorted(map(self.eval, terms), key=len)
            out = set(pos[0])
            for p in pos[1:]:
                out &= p
            for c in node.children:
                if c.negated and out:
                    out -= self.eval(c)
            return out
        return self._term(*node.children)

    def _eval_signed(self, node: _Node) -> set[int] | frozenset[int]:
        # A negated OR branch (e.g. ``a OR -b`` inside a group) means "everything but".
        return set(range(len(self.idx.tids))) - self.eval(node) if node.negated else self.eval(node)

    def _term(self, kind: str, value: object) -> frozenset[int]:
        w = self.world
        if kind == "nothing":
            return frozenset()
        if kind == "word":
            return self.idx.lines_with(f" {value} ")
        if kind == "phrase":
            return self.idx.lines_with(f" {' '.join(value)} ")  # type: ignore[arg-type]
        if kind in ("#", "@"):
            return self.idx.lines_with(f" {kind}{value} ")
        if kind in ("from", "to"):
            v = str(value)
            i = w.index_of(int(v)) if v.isdigit() else None
            if i is None:
                i = w.index_of_screen_name(v)
            return frozenset() if i is None else self.idx.lines_with(f" {kind}:{i} ")
        return self.idx.lines_with(f" {kind}:{value} ")  # lang:xx, is:retweet|reply|quote
