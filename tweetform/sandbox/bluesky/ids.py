"""Identities of the Bluesky face: DIDs, handles, TID record keys, AT URIs and CIDs.

Every one is a pure, invertible function of the world's user and tweet ids, so
no table is kept:

* DID ``did:plc:`` + 24 of ``[a-z2-7]``: the user id (64 bits), masked by a hash
  of a 56-bit tag that is itself a keyed hash of the id; decoding unmasks and
  re-derives the tag, so a DID that was never issued is rejected.
* handle ``<screen name, '_' as '-'>.sandbox.test`` (``.test`` is a valid handle TLD),
  except the demo accounts', which are ``demo-<n>.sandbox.test``.
* record key: a TID (13 chars of base32-sortable: microseconds << 10 | clock id) of
  the tweet's creation time; with the author index from the DID it gives the tweet id
  back (tweet ids are ``(ms since the Twitter epoch) << 22 | author index``).
"""

from __future__ import annotations

import hashlib
import re

from ..world import TWITTER_EPOCH_MS

HANDLE_SUFFIX = ".sandbox.test"
POST = "app.bsky.feed.post"
REPOST = "app.bsky.feed.repost"
_B32 = "abcdefghijklmnopqrstuvwxyz234567"  # RFC 4648 base32, lowercase (did:plc)
_S32 = "234567abcdefghijklmnopqrstuvwxyz"  # base32-sortable (TIDs)
_DID_RE = re.compile(r"^did:plc:[a-z2-7]{24}$")
_TID_RE = re.compile(r"^[234567abcdefghij][234567a-z]{12}$")
_HANDLE_RE = re.compile(
    r"^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$"
)
_M22 = (1 << 22) - 1


def _h(*parts: object, size: int = 8) -> bytes:
    return hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=size, key=b"tweetform-bsky").digest()


def _b32(data: bytes) -> str:
    n, bits = int.from_bytes(data, "big"), len(data) * 8
    return "".join(_B32[(n >> (bits - 5 * (k + 1))) & 31] for k in range(bits // 5))


def _unb32(text: str) -> bytes:
    n = 0
    for c in text:
        n = (n << 5) | _B32.index(c)
    return n.to_bytes(len(text) * 5 // 8, "big")


def did_of(uid: int) -> str:
    tag = _h("tag", uid, size=7)
    body = (uid ^ int.from_bytes(_h("mask", tag.hex()), "big")).to_bytes(8, "big")
    return "did:plc:" + _b32(body + tag)


def uid_of_did(did: str) -> int | None:
    """The user id behind a DID this sandbox issued, or None."""
    if not isinstance(did, str) or not _DID_RE.match(did):
        return None
    raw = _unb32(did[8:])
    body, tag = raw[:8], raw[8:]
    uid = int.from_bytes(body, "big") ^ int.from_bytes(_h("mask", tag.hex()), "big")
    return uid if _h("tag", uid, size=7) == tag else None


def is_did(value: str) -> bool:
    return isinstance(value, str) and (bool(_DID_RE.match(value)) or value.startswith("did:web:"))


def is_handle(value: str) -> bool:
    return isinstance(value, str) and len(value) <= 253 and bool(_HANDLE_RE.match(value))


def handle_of_screen_name(screen_name: str) -> str:
    return screen_name.lower().replace("_", "-") + HANDLE_SUFFIX


def screen_name_of_handle(handle: str) -> str | None:
    handle = handle.lower()
    if not handle.endswith(HANDLE_SUFFIX):
        return None
    name = handle[: -len(HANDLE_SUFFIX)]
    return name.replace("-", "_") if name and "." not in name else None


def tid(ms: int, salt: int) -> str:
    """A TID for a record made at unix ``ms``: sub-ms digits and clock id from ``salt``."""
    h = int.from_bytes(_h("tid", salt, size=4), "big")
    n = ((ms * 1000 + h % 1000) << 10) | ((h >> 10) & 1023)
    return "".join(_S32[(n >> (60 - 5 * k)) & 31] for k in range(13))


def tid_ms(rkey: str) -> int | None:
    """The unix ms a TID was made at, or None for a malformed one."""
    if not isinstance(rkey, str) or not _TID_RE.match(rkey):
        return None
    n = 0
    for c in rkey:
        n = (n << 5) | _S32.index(c)
    return (n >> 10) // 1000


def tweet_rkey(tweet_id: int) -> str:
    return tid((tweet_id >> 22) + TWITTER_EPOCH_MS, tweet_id)


def tweet_id_of(rkey: str, author_index: int) -> int | None:
    """The tweet id a post/repost record key names, given its author's index; None if not ours."""
    ms = tid_ms(rkey)
    if ms is None or ms < TWITTER_EPOCH_MS:
        return None
    tweet_id = ((ms - TWITTER_EPOCH_MS) << 22) | (author_index & _M22)
    return tweet_id if tweet_rkey(tweet_id) == rkey else None


def at_uri(did: str, collection: str, rkey: str) -> str:
    return f"at://{did}/{collection}/{rkey}"


_URI_RE = re.compile(r"^at://([^/]+)/([a-zA-Z0-9.-]+)/([A-Za-z0-9._:~-]{1,512})$")


def parse_at_uri(uri: str) -> tuple[str, str, str] | None:
    """(authority, collection, rkey) of an ``at://`` record URI, or None."""
    m = _URI_RE.match(uri) if isinstance(uri, str) else None
    return m.groups() if m else None  # type: ignore[return-value]


def cid_of(uri: str) -> str:
    """A CIDv1 (dag-cbor, sha-256) lookalike: 'bafyrei' + 52 base32 chars, fixed per record."""
    digest = hashlib.sha256(b"tweetform-bsky-cid:" + uri.encode()).digest()
    return "bafyrei" + _b32(digest + b"\0")[:52]
