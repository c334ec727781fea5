"""Tweets: what each says (kind, reference, words, mentions, hashtags) and its rendering."""

from __future__ import annotations

from datetime import datetime, timezone
from operator import itemgetter as _pick

from .common import (
    _blake2b,
    _DELETED_BELOW,
    _KIND_OF,
    _mix,
    _new_core,
    NORMAL,
    _NTAGS,
    ORIGINAL,
    _PUNCT,
    QUOTE,
    REPLY,
    RETWEET,
    _SPECIAL_BELOW,
    TWITTER_EPOCH_MS,
    _u16x32,
    _unit,
)
from .vocabulary import _b62, _LANG_OF, _SOURCE_HTML, _SOURCES, _TAG_TABLE, _WORD_TABLE
from .records import _Core, Tweet


class _Tweets:
    """Tweet contents, derived from (author index, sequence number). A mixin of :class:`World`."""

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
        elif c.kind == QUOTE and (other := self.also_replies_to(u, s)) is not None:
            names.append(self._screen_name(other[0]).lower())
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
        other = self.also_replies_to(u, s) if ref is not None else None  # a quote that also replies
        return self._tid(u, s) if other is None else self._conversation(*other)

    def _tweet(self, u: int, s: int) -> Tweet:
        _, base, gap, half, meta, author_id, source, _ = self._tuser(u)
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
                urls=list(orig.urls), deleted=deleted, possibly_sensitive=orig.possibly_sensitive, _world=self,
            )
        vals = _u16x32(rnd)
        first = words[0]
        text = first.capitalize() + " ".join(words)[len(first):] + _PUNCT[vals[19] % 6]
        mentions: list[int] = []
        urls: list[tuple[str, str]] = []
        in_reply = quoted = None
        conversation = tid
        replied = ref if kind == REPLY else self.also_replies_to(u, s) if kind == QUOTE else None
        if replied is not None:
            ru = replied[0]
            in_reply = (self._tid(*replied), self._id(ru), self._screen_name(ru))
            text = f"@{in_reply[2]} {text}"
            mentions.append(in_reply[1])
            conversation = self._conversation(*replied)
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
            deleted,
            vals[30] % 100 == 0,  # possibly_sensitive
            self,  # _world: public_metrics are read from its engagement index (see .engagement)
        )
