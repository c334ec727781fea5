"""The world as the AppView shows it: profile views, post views, feed items, threads.

How X's world maps onto Bluesky's:

* a normal account is an active Bluesky account; a protected one is *deactivated*
  (Bluesky has no protected accounts); suspended is *taken down*; deleted is gone.
  Lists and look-ups drop all but active accounts, as the AppView does.
* an original tweet, a reply or a quote is a post (``app.bsky.feed.post``): a reply
  carries ``reply {root, parent}``, a quote an ``app.bsky.embed.record``; the leading
  ``@name`` of a reply and a quote's trailing link are X's and are left out of the text.
* a retweet is a repost record (``app.bsky.feed.repost``) of the original: in an author
  feed it is the original with ``reason: reasonRepost``.
* mentions, hashtags and links are facets (UTF-8 byte offsets).
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from functools import lru_cache
from typing import Any, Callable

from ..world import Tweet, User
from . import ids

NORMAL = "normal"


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


class Views:
    """Renders one world (a generation) for the face; ``handles`` maps demo user ids to their handles."""

    def __init__(self, world: Any, handles: dict[int, str]) -> None:
        self.world = world
        self.handles = handles
        # every page of a list asks for the whole list again: keep the last few
        self.feed_ids = lru_cache(maxsize=256)(self._feed_ids)  # type: ignore[method-assign]
        self._memo: OrderedDict[Any, Any] = OrderedDict()

    def memo(self, key: Any, make: Callable[[], Any]) -> Any:
        """``make()``, remembered under ``key`` (the last 64)."""
        if key not in self._memo:
            self._memo[key] = make()
            while len(self._memo) > 64:
                self._memo.popitem(last=False)
        return self._memo[key]

    # --- identities -----------------------------------------------------------------

    def handle(self, user: User) -> str:
        return self.handles.get(user.id) or ids.handle_of_screen_name(user.screen_name)

    def active(self, uid: int) -> User | None:
        """The user if their account is active on the face (normal on X), else None."""
        u = self.world.user(uid)
        return u if u is not None and not (u.protected or u.suspended or u.deleted) else None

    def status(self, uid: int) -> str | None:
        """'active', 'deactivated', 'takendown', or None (no such account)."""
        u = self.world.user(uid)
        if u is None or u.deleted:
            return None
        return "takendown" if u.suspended else "deactivated" if u.protected else "active"

    # --- profiles -------------------------------------------------------------------

    def profile_basic(self, user: User) -> dict[str, Any]:
        did = ids.did_of(user.id)
        out: dict[str, Any] = {
            "did": did,
            "handle": self.handle(user),
            "displayName": user.name,
            "avatar": f"https://cdn.bsky.app/img/avatar/plain/{did}/{ids.cid_of(did + '#avatar')}@jpeg",
            "associated": {"chat": {"allowIncoming": "following"}},
            "viewer": {"muted": False, "blockedBy": False},
            "labels": [],
            "createdAt": iso(user.created_at),
        }
        return out

    def profile(self, user: User) -> dict[str, Any]:
        out = self.profile_basic(user)
        out["description"] = user.description
        out["indexedAt"] = iso(user.created_at)
        return out

    def profile_detailed(self, user: User) -> dict[str, Any]:
        out = self.profile(user)
        out.update(
            {
                # the AppView's counters, not list lengths (they count accounts it then hides too)
                "followersCount": user.followers_count,
                "followsCount": user.friends_count,
                "postsCount": user.statuses_count,
                "banner": f"https://cdn.bsky.app/img/banner/plain/{out['did']}/{ids.cid_of(out['did'] + '#banner')}@jpeg",
                "associated": {"lists": 0, "feedgens": 0, "starterPacks": 0, "labeler": False,
                               "chat": {"allowIncoming": "following"}},
            }
        )
        pinned = self.pinned(user)
        if pinned is not None:
            out["pinnedPost"] = {"uri": self.post_uri(pinned), "cid": ids.cid_of(self.post_uri(pinned))}
        return out

    # --- graph ----------------------------------------------------------------------

    def follows_of(self, uid: int, direction: str) -> list[int]:
        """Active accounts ``uid`` follows ('follows') or that follow it ('followers'), newest first."""
        raw = self.world.following(uid) if direction == "follows" else self.world.followers(uid)
        return [i for i in raw if self.active(i) is not None]

    # --- posts ----------------------------------------------------------------------

    def post_uri(self, tweet: Tweet) -> str:
        return ids.at_uri(ids.did_of(tweet.author_id), ids.POST, ids.tweet_rkey(tweet.id))

    def post_uri_of_id(self, tid: int) -> str:
        """A post's URI from its tweet id alone (the author's index is the id's low 22 bits)."""
        return ids.at_uri(ids.did_of(self.world.id_of(tid & 0x3FFFFF)), ids.POST, ids.tweet_rkey(tid))

    def repost_uri(self, tweet: Tweet) -> str:
        return ids.at_uri(ids.did_of(tweet.author_id), ids.REPOST, ids.tweet_rkey(tweet.id))

    def tweet_of_uri(self, uri: str, collection: str = ids.POST) -> Tweet | None:
        """The visible tweet an ``at://`` URI names (a post, or with REPOST a retweet), else None."""
        parts = ids.parse_at_uri(uri)
        if parts is None or parts[1] != collection:
            return None
        authority, _, rkey = parts
        uid = ids.uid_of_did(authority) if ids.is_did(authority) else self.uid_of_handle(authority)
        if uid is None or self.active(uid) is None:
            return None
        index = self.world.index_of(uid)
        tid = ids.tweet_id_of(rkey, index) if index is not None else None
        t = self.world.tweet(tid) if tid is not None else None
        if t is None or t.deleted or t.author_id != uid:
            return None
        if (t.retweeted_status_id is not None) != (collection == ids.REPOST):
            return None
        return t

    def uid_of_handle(self, handle: str) -> int | None:
        handle = handle.lower()
        for uid, h in self.handles.items():
            if h == handle:
                return uid
        name = ids.screen_name_of_handle(handle)
        u = self.world.user_by_screen_name(name) if name else None
        if u is None or u.id in self.handles:  # a demo account's own handle replaces its old one
            return None
        return u.id

    def uid_of_actor(self, actor: str) -> int | None:
        return ids.uid_of_did(actor) if actor.startswith("did:") else self.uid_of_handle(actor)

    def visible_tweet(self, tid: int | None) -> Tweet | None:
        t = self.world.tweet(tid) if tid else None
        if t is None or t.deleted or self.active(t.author_id) is None:
            return None
        return t

    def _text_and_facets(self, tweet: Tweet) -> tuple[str, list[dict[str, Any]]]:
        text = tweet.text
        if tweet.in_reply_to_screen_name and text.startswith("@" + tweet.in_reply_to_screen_name + " "):
            text = text[len(tweet.in_reply_to_screen_name) + 2 :]
        links: list[tuple[str, str]] = []
        for short, expanded in tweet.urls:
            if tweet.quoted_status_id and "/status/" in expanded:
                text = text.replace(" " + short, "")
            else:
                text = text.replace(short, expanded)
                links.append((expanded, expanded))
        raw = text.encode()
        facets: list[dict[str, Any]] = []

        def span(needle: str) -> tuple[int, int] | None:
            pos = raw.find(needle.encode())
            return None if pos < 0 else (pos, pos + len(needle.encode()))

        for uid in tweet.mentions:
            u = self.world.user(uid)
            where = span("@" + u.screen_name) if u is not None else None
            if where and self.active(uid) is not None:
                facets.append({"index": {"byteStart": where[0], "byteEnd": where[1]},
                               "features": [{"$type": "app.bsky.richtext.facet#mention", "did": ids.did_of(uid)}]})
        for tag in tweet.hashtags:
            where = span("#" + tag)
            if where:
                facets.append({"index": {"byteStart": where[0], "byteEnd": where[1]},
                               "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": tag}]})
        for shown, target in links:
            where = span(shown)
            if where:
                facets.append({"index": {"byteStart": where[0], "byteEnd": where[1]},
                               "features": [{"$type": "app.bsky.richtext.facet#link", "uri": target}]})
        facets.sort(key=lambda f: f["index"]["byteStart"])
        return text, facets

    def record(self, tweet: Tweet) -> dict[str, Any]:
        text, facets = self._text_and_facets(tweet)
        rec: dict[str, Any] = {"$type": ids.POST, "createdAt": iso(tweet.created_at), "langs": [tweet.lang], "text": text}
        if facets:
            rec["facets"] = facets
        if tweet.in_reply_to_status_id:
            parent_uri = self._ref_uri(tweet.in_reply_to_status_id, tweet.in_reply_to_user_id)
            root_uri = self._ref_uri(tweet.conversation_id, None) or parent_uri
            if parent_uri:
                rec["reply"] = {"root": {"uri": root_uri, "cid": ids.cid_of(root_uri)},
                                "parent": {"uri": parent_uri, "cid": ids.cid_of(parent_uri)}}
        if tweet.quoted_status_id:
            quoted = self._ref_uri(tweet.quoted_status_id, None)
            if quoted:
                rec["embed"] = {"$type": "app.bsky.embed.record", "record": {"uri": quoted, "cid": ids.cid_of(quoted)}}
        return rec

    def _ref_uri(self, tid: int, author_id: int | None) -> str | None:
        """The URI of a referenced post (whether or not it is still visible: records keep references)."""
        t = self.world.tweet(tid)
        if t is not None:
            return self.post_uri(t)
        if author_id is None:
            return None
        index = self.world.index_of(author_id)
        return ids.at_uri(ids.did_of(author_id), ids.POST, ids.tweet_rkey(tid)) if index is not None else None

    def post(self, tweet: Tweet, *, embed: bool = True) -> dict[str, Any]:
        author = self.world.user(tweet.author_id)
        uri = self.post_uri(tweet)
        out: dict[str, Any] = {
            "uri": uri,
            "cid": ids.cid_of(uri),
            "author": self.profile_basic(author),
            "record": self.record(tweet),
        }
        if tweet.quoted_status_id and embed:
            out["embed"] = self.embed_view(tweet.quoted_status_id)
        out.update(
            {
                "replyCount": tweet.reply_count,
                "repostCount": tweet.retweet_count,
                "likeCount": tweet.favorite_count,
                "quoteCount": tweet.quote_count,
                "indexedAt": iso(tweet.created_at),
                "viewer": {"threadMuted": False, "embeddingDisabled": False},
                "labels": [],
            }
        )
        return out

    def embed_view(self, quoted_id: int) -> dict[str, Any]:
        quoted = self.visible_tweet(quoted_id)
        if quoted is None:
            t = self.world.tweet(quoted_id)
            uri = self.post_uri(t) if t is not None else ""
            return {"$type": "app.bsky.embed.record#view",
                    "record": {"$type": "app.bsky.embed.record#viewNotFound", "uri": uri, "notFound": True}}
        uri = self.post_uri(quoted)
        return {
            "$type": "app.bsky.embed.record#view",
            "record": {
                "$type": "app.bsky.embed.record#viewRecord",
                "uri": uri,
                "cid": ids.cid_of(uri),
                "author": self.profile_basic(self.world.user(quoted.author_id)),
                "value": self.record(quoted),
                "labels": [],
                "likeCount": quoted.favorite_count,
                "replyCount": quoted.reply_count,
                "repostCount": quoted.retweet_count,
                "quoteCount": quoted.quote_count,
                "indexedAt": iso(quoted.created_at),
            },
        }

    def feed_item(self, tweet: Tweet) -> dict[str, Any] | None:
        """A feedViewPost for a timeline entry: a post, or a repost (the original plus its reason)."""
        if tweet.retweeted_status_id:
            original = self.visible_tweet(tweet.retweeted_status_id)
            if original is None:
                return None
            return {
                "post": self.post(original),
                "reason": {"$type": "app.bsky.feed.defs#reasonRepost",
                           "by": self.profile_basic(self.world.user(tweet.author_id)),
                           "uri": self.repost_uri(tweet), "cid": ids.cid_of(self.repost_uri(tweet)),
                           "indexedAt": iso(tweet.created_at)},
            }
        item: dict[str, Any] = {"post": self.post(tweet)}
        if tweet.in_reply_to_status_id:
            parent = self.visible_tweet(tweet.in_reply_to_status_id)
            root = self.visible_tweet(tweet.conversation_id) or parent
            item["reply"] = {"root": self._ref_view(root, tweet.conversation_id),
                             "parent": self._ref_view(parent, tweet.in_reply_to_status_id)}
        return item

    def _ref_view(self, tweet: Tweet | None, tid: int) -> dict[str, Any]:
        if tweet is not None:
            return {"$type": "app.bsky.feed.defs#postView", **self.post(tweet)}
        t = self.world.tweet(tid)
        return {"$type": "app.bsky.feed.defs#notFoundPost", "uri": self.post_uri(t) if t else "", "notFound": True}

    # --- author feeds -------------------------------------------------------------------

    def _feed_ids(self, uid: int, filter_: str = "posts_with_replies") -> list[int]:
        """Ids of the tweets making ``uid``'s author feed (newest first; retweets are reposts)."""
        if self.active(uid) is None:
            return []
        out = []
        for tid in self.world.timeline(uid):
            if filter_ in ("posts_with_media", "posts_with_video"):
                break  # the world has no media
            if filter_ != "posts_with_replies":
                t = self.world.tweet(tid)
                if t is None:
                    continue
                if t.in_reply_to_status_id and (filter_ == "posts_no_replies" or t.in_reply_to_user_id != uid):
                    continue
            out.append(tid)
        return out

    def pinned(self, user: User) -> Tweet | None:
        """A deterministic minority pin their newest original post (as render.pinned_tweet_id picks)."""
        if user.index % 7 != 3:
            return None
        for tid in self.world.timeline(user.id)[:20]:
            t = self.world.tweet(tid)
            if t is not None and not t.retweeted_status_id:
                return t
        return None
