"""The search corpus and its index: one line of tokens and operator keys per tweet."""

from __future__ import annotations

import threading
from array import array
from bisect import bisect_right
from itertools import accumulate

from .common import (
    _DAY,
    _DELETED_BELOW,
    _IS_KEY,
    NORMAL,
    _NOW_MS,
    ORIGINAL,
    QUOTE,
    RECENT_DAYS,
    REPLY,
    TWITTER_EPOCH_MS,
)
from .vocabulary import _tag_strings
from .query import _Evaluator, _parse


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


class _Search:
    """Search over the corpus (recent: 7 days before now; archive: all). A mixin of :class:`World`."""

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
                        replied = c.ref if c.kind == REPLY else self.also_replies_to(u, s) if c.kind == QUOTE else None
                        if replied is not None:
                            if c.kind == QUOTE:  # a quote that also replies (engagement.py's cascades)
                                keys.append("is:reply")
                            keys.append(f"to:{replied[0]}")
                            keys.append(f"conversation_id:{self._conversation(*replied)}")
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
        ``is:quote``, ``conversation_id:ID`` (the replies of a thread, not its root: the
        API's clients fetch the root apart). AND binds tighter than OR. Raises ValueError for an empty
        or malformed query, an unknown operator, or a group of only negated terms.
        """
        tree = _parse(query)
        idx = self._index(archive)
        hits = _Evaluator(self, idx).eval(tree)
        tids = idx.tids
        return [tids[p] for p in sorted(hits)]
