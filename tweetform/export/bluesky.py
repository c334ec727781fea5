"""Bluesky pages for the exports: profiles as users, posts as tweets, in X's columns where they exist.

Pages of ``-a api=bluesky`` crawls are written as the AppView sent them (``__tweetform.api_version``
is ``bluesky``). The exports read them through this module:

* users: a profile (``profileView``, ``profileViewDetailed``) is a user whose id is its DID;
  ``screen_name`` is the handle, ``name`` the display name, and the counts are
  ``followersCount``, ``followsCount`` (friends) and ``postsCount`` (statuses).
* posts: the entries of a page of ``getAuthorFeed`` (``feed``: feed items, a repost being the
  original post with ``reason: reasonRepost``), ``searchPosts``, ``getPosts``, ``getQuotes``
  (``posts``) and ``getPostThread`` (every post of the ``thread`` tree). Each entry is one object
  (:func:`posts_of_page`): a post's id is its ``at://`` URI, a repost's the URI of the repost
  record (``reason.uri``); a pinned post shown at the top of a feed is the post itself.
* references are read from the record: a reply's parent (``record.reply.parent.uri``), a quote's
  post (``record.embed``), and their authors are the DIDs those ``at://`` URIs start with, so no
  hydrated view is needed to know who reacted to whom; mentions are the record's mention facets.
"""

from __future__ import annotations

from typing import Any, Iterator

from tweetform.api.bluesky import listed
from tweetform.items import PROVENANCE

BLUESKY = "bluesky"
FOLLOWS = "app.bsky.graph.getFollows"
FOLLOWERS = "app.bsky.graph.getFollowers"
PROFILES = "app.bsky.actor.getProfiles"
REPOSTED_BY = "app.bsky.feed.getRepostedBy"
LIKES = "app.bsky.feed.getLikes"
FEED = "app.bsky.feed.getAuthorFeed"
THREAD = "app.bsky.feed.getPostThread"
#: endpoints whose pages hold posts, and the member that lists them (the thread is a tree)
POST_ENDPOINTS = {FEED: "feed", "app.bsky.feed.searchPosts": "posts", "app.bsky.feed.getPosts": "posts",
                  "app.bsky.feed.getQuotes": "posts", THREAD: "thread"}
#: endpoints whose pages list profiles, and the member that lists them
PROFILE_LISTS = {FOLLOWS: "follows", FOLLOWERS: "followers", PROFILES: "profiles", REPOSTED_BY: "repostedBy"}
REPOST = "app.bsky.feed.defs#reasonRepost"


def is_bluesky(page: dict[str, Any]) -> bool:
    prov = page.get(PROVENANCE)
    return isinstance(prov, dict) and prov.get("api_version") == BLUESKY


def did_of_uri(uri: Any) -> str | None:
    """The DID an ``at://<did>/<collection>/<rkey>`` URI names (its author), or None."""
    if not isinstance(uri, str) or not uri.startswith("at://did:"):
        return None
    return uri[len("at://"):].split("/", 1)[0]


def profile_attributes(profile: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """``(DID, attributes)`` of a profile view, in the user attributes' names (only those it has)."""
    did = profile.get("did")
    if not isinstance(did, str) or not did:
        return None
    attrs: dict[str, Any] = {}
    if profile.get("handle"):
        attrs["screen_name"] = attrs["label"] = str(profile["handle"])
    if profile.get("displayName") is not None:
        attrs["name"] = str(profile["displayName"])
    for ours, theirs in (("followers_count", "followersCount"), ("friends_count", "followsCount"),
                         ("statuses_count", "postsCount")):
        if isinstance(profile.get(theirs), int):
            attrs[ours] = profile[theirs]
    return did, attrs


def profiles_of_page(page: dict[str, Any]) -> list[dict[str, Any]]:
    """The profiles a page lists (follows, followers, look-ups, reposters; likers of ``getLikes``)."""
    endpoint = (page.get(PROVENANCE) or {}).get("endpoint")
    if endpoint == LIKES:
        return [like["actor"] for like in listed(page.get("likes")) if isinstance(like, dict) and isinstance(like.get("actor"), dict)]
    found = page.get(PROFILE_LISTS.get(endpoint, ""))
    return [p for p in found if isinstance(p, dict)] if isinstance(found, list) else []


def _thread_posts(node: Any) -> Iterator[dict[str, Any]]:
    """Every post of a thread tree: its parents up to the root, then the post and its replies
    (not-found and blocked nodes have no post)."""
    if not isinstance(node, dict):
        return
    parents = []
    parent = node.get("parent")
    while isinstance(parent, dict):
        if isinstance(parent.get("post"), dict):
            parents.append(parent["post"])
        parent = parent.get("parent")
    yield from reversed(parents)
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current.get("post"), dict):
            yield current["post"]
        stack.extend(reversed([r for r in listed(current.get("replies")) if isinstance(r, dict)]))


def posts_of_page(page: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries of a page of posts: feed items (``{post, reply?, reason?}``) of an author feed,
    post views of the others; nothing for other pages."""
    prov = page.get(PROVENANCE) if isinstance(page.get(PROVENANCE), dict) else {}
    member = POST_ENDPOINTS.get(prov.get("endpoint"))
    if member is None or prov.get("bucket") == "errors":
        return []
    if member == "thread":
        return list(_thread_posts(page.get("thread")))
    found = page.get(member)
    entries = [e for e in found if isinstance(e, dict)] if isinstance(found, list) else []
    return [e for e in entries if isinstance(e.get("post" if member == "feed" else "uri"), (dict, str))]


def post_of(entry: dict[str, Any]) -> dict[str, Any]:
    """The post view of an entry (a feed item's ``post``, or the entry itself)."""
    return entry["post"] if isinstance(entry.get("post"), dict) and "uri" not in entry else entry


def repost_reason(entry: dict[str, Any]) -> dict[str, Any] | None:
    reason = entry.get("reason") if "uri" not in entry else None
    return reason if isinstance(reason, dict) and reason.get("$type") == REPOST and isinstance(reason.get("by"), dict) else None


def entry_id(entry: dict[str, Any]) -> str | None:
    """A post's ``at://`` URI; a repost's, the repost record's (or, from an AppView that leaves it
    out, ``<post uri>#repost:<reposter's DID>``: one repost per account and post)."""
    post = post_of(entry)
    reason = repost_reason(entry)
    if reason is not None:
        return reason.get("uri") or f"{post.get('uri')}#repost:{reason['by'].get('did')}"
    uri = post.get("uri")
    return uri if isinstance(uri, str) and uri else None


def _record(post: dict[str, Any]) -> dict[str, Any]:
    return post["record"] if isinstance(post.get("record"), dict) else {}


def reply_parent(post: dict[str, Any]) -> str | None:
    parent = (_record(post).get("reply") or {}).get("parent") or {}
    return parent.get("uri") if isinstance(parent, dict) else None


def reply_root(post: dict[str, Any]) -> str | None:
    root = (_record(post).get("reply") or {}).get("root") or {}
    return root.get("uri") if isinstance(root, dict) else None


def quoted_uri(post: dict[str, Any]) -> str | None:
    """The post a post quotes (``app.bsky.embed.record``, or ``…recordWithMedia``'s record)."""
    embed = _record(post).get("embed")
    if not isinstance(embed, dict):
        return None
    record = embed.get("record")
    if isinstance(record, dict) and isinstance(record.get("record"), dict):  # recordWithMedia: {record: {record}}
        record = record["record"]
    uri = record.get("uri") if isinstance(record, dict) else None
    return uri if isinstance(uri, str) and "/app.bsky.feed.post/" in uri else None


def _quoted_author(post: dict[str, Any]) -> dict[str, Any]:
    """The quoted post's author as the post view embeds it (empty when it does not)."""
    record = (post.get("embed") or {}).get("record") if isinstance(post.get("embed"), dict) else None
    if isinstance(record, dict) and isinstance(record.get("record"), dict) and "author" not in record:
        record = record["record"]  # recordWithMedia#view
    author = record.get("author") if isinstance(record, dict) else None
    return author if isinstance(author, dict) else {}


def facets(post: dict[str, Any], kind: str) -> list[tuple[str, Any]]:
    """``(the text the facet spans, its feature)`` of the record's facets of one kind (mention, tag, link)."""
    record = _record(post)
    raw = str(record.get("text") or "").encode()
    out = []
    for facet in listed(record.get("facets")):
        index = facet.get("index") if isinstance(facet, dict) and isinstance(facet.get("index"), dict) else {}
        for feature in listed(facet.get("features")) if isinstance(facet, dict) else []:
            if isinstance(feature, dict) and feature.get("$type") == f"app.bsky.richtext.facet#{kind}":
                span = raw[index.get("byteStart", 0): index.get("byteEnd", 0)].decode(errors="replace")
                out.append((span, feature))
    return out


def mentioned(post: dict[str, Any]) -> list[str]:
    """The DIDs a post mentions (its mention facets), in order."""
    return [f["did"] for _, f in facets(post, "mention") if isinstance(f.get("did"), str)]


def reactions(entry: dict[str, Any]) -> tuple[str | None, list[tuple[str, str | None]], list[dict[str, Any]]]:
    """``(author DID, [(kind, target DID)], profiles met)`` of an entry, by the tweet network's rules:
    a repost gives its ``retweet`` edge only (the words are the original's); a post its quote, its reply
    (to the parent's author) and its mentions."""
    post = post_of(entry)
    reason = repost_reason(entry)
    users = [p for p in (post.get("author"), _quoted_author(post), (reason or {}).get("by")) if isinstance(p, dict) and p]
    if reason is not None:
        return reason["by"].get("did"), [("retweet", (post.get("author") or {}).get("did"))], users
    found: list[tuple[str, str | None]] = []
    quoted = quoted_uri(post)
    if quoted:
        found.append(("quote", did_of_uri(quoted)))
    parent = reply_parent(post)
    if parent:
        found.append(("reply", did_of_uri(parent)))
    found += [("mention", did) for did in mentioned(post)]
    return (post.get("author") or {}).get("did"), found, users


def entry_time(entry: dict[str, Any]) -> str | None:
    """When an entry happened: a post's ``record.createdAt``, a repost's ``reason.indexedAt``."""
    reason = repost_reason(entry)
    if reason is not None:
        return reason.get("indexedAt")
    return _record(post_of(entry)).get("createdAt") or post_of(entry).get("indexedAt")


def is_pinned(entry: dict[str, Any]) -> bool:
    """A feed item shown first because its author pinned it (out of the feed's time order)."""
    reason = entry.get("reason") if "uri" not in entry else None
    return isinstance(reason, dict) and reason.get("$type") == "app.bsky.feed.defs#reasonPin"


def sort_time(entry: dict[str, Any]) -> str | None:
    """Where a feed item sits in an author feed, as UTC ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (text that sorts as
    time): a repost at its ``indexedAt``, a post at the earlier of its ``createdAt`` and ``indexedAt``
    (the AppView's ``sortAt``: a post dated in the future does not sort first)."""
    from tweetform.export.tweet_network import utc_time

    reason = repost_reason(entry)
    if reason is not None:
        return utc_time(reason.get("indexedAt"))
    post = post_of(entry)
    times = [t for t in (utc_time(_record(post).get("createdAt")), utc_time(post.get("indexedAt"))) if t]
    return min(times) if times else None


def row(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry in the tweets CSV's columns (twarc-csv's names), where Bluesky has the field: a repost
    carries its original's text and counts, as ``twarc2 csv`` merges retweets."""
    from tweetform.export.tweet_network import utc_time

    post = post_of(entry)
    record = _record(post)
    reason = repost_reason(entry)
    author = reason["by"] if reason is not None else post.get("author") or {}
    parent, quoted = reply_parent(post), quoted_uri(post)
    langs = record.get("langs")
    out: dict[str, Any] = {
        "id": entry_id(entry),
        "conversation_id": None if reason is not None else reply_root(post) or post.get("uri"),
        "referenced_tweets.replied_to.id": None if reason is not None else parent,
        "referenced_tweets.retweeted.id": post.get("uri") if reason is not None else None,
        "referenced_tweets.quoted.id": None if reason is not None else quoted,
        "author_id": author.get("did"),
        "in_reply_to_user_id": did_of_uri(parent) if parent and reason is None else None,
        "created_at": utc_time(entry_time(entry)) or entry_time(entry),
        "text": record.get("text"),
        "lang": langs[0] if isinstance(langs, list) and langs else None,
        "public_metrics.reply_count": post.get("replyCount"),
        "public_metrics.retweet_count": post.get("repostCount"),
        "public_metrics.quote_count": post.get("quoteCount"),
        "public_metrics.like_count": post.get("likeCount"),
        "entities.hashtags": ["#" + str(f.get("tag")) for _, f in facets(post, "tag")] or None,
        "entities.mentions": [span for span, _ in facets(post, "mention")] or None,
        "entities.urls": [f.get("uri") for _, f in facets(post, "link")] or None,
        "author.id": author.get("did"),
        "author.created_at": author.get("createdAt"),
        "author.username": author.get("handle"),
        "author.name": author.get("displayName"),
        "author.description": author.get("description"),
    }
    if reason is None and parent:
        reply_view = ((entry.get("reply") or {}).get("parent") or {}) if "uri" not in entry else {}
        out["in_reply_to_username"] = (reply_view.get("author") or {}).get("handle") if isinstance(reply_view, dict) else None
    if reason is not None:
        out["retweeted_user_id"] = (post.get("author") or {}).get("did")
        out["retweeted_username"] = (post.get("author") or {}).get("handle")
    elif quoted:
        out["quoted_user_id"] = did_of_uri(quoted)
        out["quoted_username"] = _quoted_author(post).get("handle")
    return out


def ids_of_page(page: dict[str, Any]) -> list[str]:
    """Dehydrated: the DIDs of a page's profiles, or the ``at://`` URIs of its posts (a repost's
    original: getPosts takes post URIs)."""
    entries = posts_of_page(page)
    if entries:
        return [str(post_of(e)["uri"]) for e in entries if post_of(e).get("uri")]
    return [str(p["did"]) for p in profiles_of_page(page) if p.get("did")]
