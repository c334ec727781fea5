"""Pagination as the API does it: opaque cursors and tokens, and short pages.

The real API filters suspended accounts *after* it cuts a page, so pages are
often shorter than asked for while more remain (84 of 100, 2 of 10). The
sandbox reproduces that deterministically: some pages come back a little short,
and the next page starts where the short one ended, so nothing is skipped and
only the absence of a cursor/token marks the end.
"""

from __future__ import annotations

import zlib

CURSOR_BASE = 1_600_000_000_000_000_000


def _mix(*parts: object) -> int:
    return zlib.crc32(":".join(map(str, parts)).encode())


def short_by(salt: object, offset: int, size: int) -> int:
    """How many fewer items than asked this page carries (0 on most pages)."""
    h = _mix(salt, offset, size)
    if size < 5 or h % 3:
        return 0
    return 1 + (h >> 4) % max(1, size // 6)


def page(items: list, offset: int, size: int, salt: object) -> tuple[list, int | None]:
    """Cut one page; return it and the next offset (None on the last page)."""
    take = size - short_by(salt, offset, size)
    chunk = items[offset : offset + take]
    nxt = offset + take
    return chunk, (nxt if nxt < len(items) else None)


def encode_cursor(offset: int, salt: object) -> int:
    return CURSOR_BASE + offset * 1000 + _mix(salt) % 1000


def decode_cursor(cursor: int, salt: object) -> int | None:
    """Offset of a v1.1 cursor; -1 is the first page; None when not ours."""
    if cursor == -1:
        return 0
    if cursor < -1:
        # a previous_cursor (sent as the negative of a cursor, as the API does):
        # it used to be rejected with 400 code 44, so paging back was impossible
        cursor = -cursor
    rest = cursor - CURSOR_BASE
    if rest < 0 or rest % 1000 != _mix(salt) % 1000:
        return None
    return rest // 1000


_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def _b36(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _ALPHABET[r] + out
        if not n:
            return out


def encode_token(offset: int, salt: object) -> str:
    """An opaque v2 pagination token (the real ones look like '7140dibdnow9c7btw4')."""
    return _b36(offset) + _b36(_mix(salt, offset) % 36**6).rjust(6, "0")


def decode_token(token: str, salt: object) -> int | None:
    head = token[:-6]
    if not head or len(token) > 20 or any(c not in _ALPHABET for c in token):
        return None
    offset = int(head, 36)
    return offset if encode_token(offset, salt) == token else None
