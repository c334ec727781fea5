"""tweetform.export.bluesky on hand-made AppView shapes the sandbox does not send: a quote with media
(``recordWithMedia``), a repost from an AppView that leaves out the repost record's URI, a pinned post,
a thread with a missing parent, facets whose UTF-8 byte offsets pass non-ASCII text."""

from __future__ import annotations

import io
from typing import Any

from tweetform.export import bluesky
from tweetform.export.tweet_network import TweetNetwork
from tweetform.export.tweets import TweetWriter

A, B, C = "did:plc:" + "a" * 24, "did:plc:" + "b" * 24, "did:plc:" + "c" * 24


def uri(did: str, rkey: str) -> str:
    return f"at://{did}/app.bsky.feed.post/{rkey}"


def post(did: str, rkey: str, text: str = "hi", **record: Any) -> dict[str, Any]:
    return {"uri": uri(did, rkey), "cid": "bafy", "author": {"did": did, "handle": f"{did[-3:]}.example.com"},
            "record": {"$type": "app.bsky.feed.post", "text": text, "createdAt": "2026-10-01T12:00:00.123456Z",
                       "langs": ["de", "en"], **record},
            "indexedAt": "2026-10-01T12:00:01.000Z", "replyCount": 1, "repostCount": 2, "likeCount": 3, "quoteCount": 4}


def page(endpoint: str, **body: Any) -> dict[str, Any]:
    return {**body, "__tweetform": {"endpoint": endpoint, "api_version": "bluesky", "bucket": "b", "key": "k", "job": "j"}}


def test_quote_with_media_repost_without_uri_and_pin() -> None:
    text = "Grüße @ccc.example.com #tag"  # ü is two bytes: offsets are UTF-8 bytes
    start = len("Grüße ".encode())
    mention = {"index": {"byteStart": start, "byteEnd": start + len("@ccc.example.com")},
               "features": [{"$type": "app.bsky.richtext.facet#mention", "did": C}]}
    quoting = post(A, "3aaaaaaaaaaa2", text, facets=[mention], embed={
        "$type": "app.bsky.embed.recordWithMedia", "media": {},
        "record": {"record": {"uri": uri(B, "3bbbbbbbbbbb2"), "cid": "bafy"}}})
    reposted = post(B, "3bbbbbbbbbbb2")
    feed = page("app.bsky.feed.getAuthorFeed", feed=[
        {"post": quoting, "reason": {"$type": "app.bsky.feed.defs#reasonPin"}},  # pinned: the post itself
        {"post": reposted, "reason": {"$type": "app.bsky.feed.defs#reasonRepost", "by": {"did": A, "handle": "aaa.example.com"},
                                      "indexedAt": "2026-10-02T00:00:00.000Z"}},
        {"post": quoting}])
    entries = bluesky.posts_of_page(feed)
    assert [bluesky.entry_id(e) for e in entries] == [quoting["uri"], f"{reposted['uri']}#repost:{A}", quoting["uri"]]
    row = bluesky.row(entries[0])
    assert row["referenced_tweets.quoted.id"] == reposted["uri"] and row["quoted_user_id"] == B
    assert row["entities.mentions"] == ["@ccc.example.com"] and row["lang"] == "de"
    assert row["created_at"] == "2026-10-01T12:00:00.123Z"
    repost = bluesky.row(entries[1])
    assert repost["author_id"] == A and repost["retweeted_user_id"] == B and repost["created_at"] == "2026-10-02T00:00:00.000Z"
    assert bluesky.sort_time(entries[1]) == "2026-10-02T00:00:00.000Z"
    assert bluesky.is_pinned(entries[0]) and not bluesky.is_pinned(entries[2])

    network = TweetNetwork().add_pages([feed])
    edges = {(s, t, k): d["weight"] for s, t, k, d in network.graph().edges(keys=True, data=True)}
    assert edges == {(A, B, "quote"): 1, (A, C, "mention"): 1, (A, B, "retweet"): 1}  # the pinned copy counted once
    assert network.duplicates == 1


def test_thread_with_a_missing_parent_gives_every_post_once() -> None:
    root, reply, nested = post(A, "3aaaaaaaaaaa2"), post(B, "3bbbbbbbbbbb2"), post(C, "3ccccccccccc2")
    reply["record"]["reply"] = {"root": {"uri": root["uri"]}, "parent": {"uri": root["uri"]}}
    nested["record"]["reply"] = {"root": {"uri": root["uri"]}, "parent": {"uri": reply["uri"]}}
    thread = page("app.bsky.feed.getPostThread", thread={
        "$type": "app.bsky.feed.defs#threadViewPost", "post": reply,
        "parent": {"$type": "app.bsky.feed.defs#notFoundPost", "uri": root["uri"], "notFound": True},
        "replies": [{"post": nested, "replies": [{"uri": "at://x", "blocked": True}]}]})
    out = io.StringIO()
    writer = TweetWriter(out, "csv").add_pages([thread])
    assert writer.written == 2 and writer.seen == {reply["uri"], nested["uri"]}
    rows = out.getvalue().splitlines()[1:]
    assert rows[0].startswith(f"{reply['uri']},{root['uri']},{root['uri']},")  # id, conversation, replied-to
    assert bluesky.ids_of_page(thread) == [reply["uri"], nested["uri"]]


def test_members_of_the_wrong_type_are_read_as_empty_not_a_traceback() -> None:
    """Pages not as the AppView sends them (a hand-edited file, another tool's): a list member that is a
    number, a thread whose replies are not a list, facets that are not a list. Every export reads them
    as holding nothing (each was a TypeError: 'int' object is not iterable)."""
    from tweetform.export.cascade import CascadeBuilder
    from tweetform.export.graph import GraphBuilder
    from tweetform.export.ids import ids_of_page

    listing = {"list": "likes", "depth": 1, "post": uri(A, "3mz2vrdtf3uae")}
    damaged = [page(bluesky.THREAD, thread={"post": 5, "replies": 5, "parent": 5}),
               page(bluesky.LIKES, likes=5), page(bluesky.REPOSTED_BY, repostedBy=5),
               page("app.bsky.feed.getPosts", posts=5)]
    for p in damaged[1:]:
        p["__tweetform"].update(listing)
    odd = post(A, "3mz2vrdtf3uae", facets=5)
    damaged.append(page("app.bsky.feed.getPosts", posts=[odd]))
    for p in damaged[:-1]:
        assert ids_of_page(p) == [] and bluesky.posts_of_page(p) == []
    out = io.StringIO()
    assert TweetWriter(out, "csv").add_pages(damaged).written == 1  # the post with odd facets, without them
    assert "3mz2vrdtf3uae" in out.getvalue()
    assert GraphBuilder().add_pages(damaged).graph.number_of_edges() == 0
    cascade = CascadeBuilder().add_pages(damaged)
    assert list(cascade.posts) == [odd["uri"]] and cascade.users == {}
    assert TweetNetwork().add_pages(damaged).graph().number_of_edges() == 0


def test_crawl_side_readers_take_a_member_of_the_wrong_type_as_empty() -> None:
    """The spiders read the AppView's answers with the same care: a ``posts``, ``follows`` or ``replies`` that is
    not a list finds nothing (and every asked-for seed post is missing) instead of a TypeError in the callback."""
    from tweetform.api.bluesky import missing_uris, thread_below
    from tweetform.spiders.cascade import found_uris
    from tweetform.spiders.network import ids_in_page

    seed = uri(A, "3mz2vrdtf3uae")
    assert found_uris("quotes", {"posts": 5}) == [] and found_uris("replies", {"thread": {"replies": 5}}) == []
    assert missing_uris({"posts": 5}, [seed]) == [seed]
    assert ids_in_page({"follows": 5}) == []
    assert thread_below({"replies": [{"post": post(B, "3mz2vrdtf3uaf"), "replies": 5}]})[0][0]["uri"] == uri(B, "3mz2vrdtf3uaf")
