"""JSON shapes of users and tweets, as API v1.1 and v2 send them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from .world import Tweet, User, World

V2_USER_FIELDS = frozenset(
    "affiliation connection_status created_at description entities id location most_recent_tweet_id "
    "name pinned_tweet_id profile_banner_url profile_image_url protected public_metrics receives_your_dm "
    "subscription_type url username verified verified_type withheld".split()
)
V2_TWEET_FIELDS = frozenset(
    "article attachments author_id card_uri community_id context_annotations conversation_id created_at "
    "display_text_range edit_controls edit_history_tweet_ids entities geo id in_reply_to_user_id lang "
    "media_metadata non_public_metrics note_tweet organic_metrics possibly_sensitive promoted_metrics "
    "public_metrics referenced_tweets reply_settings scopes source text withheld".split()
)
V2_TWEET_EXPANSIONS = frozenset(
    "author_id referenced_tweets.id referenced_tweets.id.author_id in_reply_to_user_id "
    "entities.mentions.username attachments.media_keys attachments.poll_ids geo.place_id "
    "edit_history_tweet_ids entities.note.mentions.username".split()
)
V2_USER_EXPANSIONS = frozenset({"pinned_tweet_id", "most_recent_tweet_id", "affiliation.user_id"})
V2_OTHER_FIELD_PARAMS = ("media.fields", "place.fields", "poll.fields")


def v1_date(dt: datetime) -> str:
    return dt.strftime("%a %b %d %H:%M:%S +0000 %Y")


def v2_date(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _spans(text: str, needle: str, start: int = 0) -> tuple[int, int] | None:
    pos = text.find(needle, start)
    return None if pos < 0 else (pos, pos + len(needle))


def _entities(world: World, tweet: Tweet) -> dict[str, list[tuple[int, int, Any]]]:
    """Positions of hashtags, mentions and urls inside the tweet text."""
    text = tweet.text
    found: dict[str, list[tuple[int, int, Any]]] = {"hashtags": [], "mentions": [], "urls": []}
    for tag in tweet.hashtags:
        span = _spans(text, "#" + tag)
        if span:
            found["hashtags"].append((span[0], span[1], tag))
    for uid in tweet.mentions:
        u = world.user(uid)
        if u is None:
            continue
        span = _spans(text, "@" + u.screen_name)
        if span:
            found["mentions"].append((span[0], span[1], u))
    for url, expanded in tweet.urls:
        span = _spans(text, url)
        if span:
            found["urls"].append((span[0], span[1], (url, expanded)))
    return found


def _display_url(expanded: str) -> str:
    return expanded.split("://", 1)[-1][:26]


# --- v1.1 -----------------------------------------------------------------------


def v1_user(world: World, user: User, *, include_status: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": user.id,
        "id_str": str(user.id),
        "name": user.name,
        "screen_name": user.screen_name,
        "location": user.location,
        "description": user.description,
        "url": user.url,
        "entities": {
            "description": {"urls": []},
            **({"url": {"urls": [{"url": user.url, "expanded_url": user.url, "display_url": _display_url(user.url), "indices": [0, len(user.url)]}]}} if user.url else {}),
        },
        "protected": user.protected,
        "followers_count": user.followers_count,
        "friends_count": user.friends_count,
        "listed_count": user.listed_count,
        "created_at": v1_date(user.created_at),
        "favourites_count": user.favourites_count,
        "utc_offset": None,
        "time_zone": None,
        "geo_enabled": False,
        "verified": user.verified,
        "statuses_count": user.statuses_count,
        "lang": None,
        "contributors_enabled": False,
        "is_translator": False,
        "is_translation_enabled": False,
        "profile_background_color": "F5F8FA",
        "profile_image_url": user.profile_image_url.replace("https://", "http://"),
        "profile_image_url_https": user.profile_image_url,
        "profile_link_color": "1DA1F2",
        "profile_text_color": "333333",
        "profile_use_background_image": True,
        "has_extended_profile": False,
        "default_profile": True,
        "default_profile_image": False,
        "following": False,
        "follow_request_sent": False,
        "notifications": False,
        "translator_type": "none",
        "withheld_in_countries": [],
    }
    if include_status and not user.protected:
        timeline = world.timeline(user.id)
        if timeline:
            latest = world.tweet(timeline[0])
            if latest is not None:
                out["status"] = v1_tweet(world, latest, trim_user=True, embed=False)
    return out


def v1_tweet(
    world: World, tweet: Tweet, *, trim_user: bool = False, extended: bool = False, embed: bool = True
) -> dict[str, Any]:
    ents = _entities(world, tweet)
    author = world.user(tweet.author_id)
    out: dict[str, Any] = {
        "created_at": v1_date(tweet.created_at),
        "id": tweet.id,
        "id_str": str(tweet.id),
    }
    if extended:
        out["full_text"] = tweet.text
        out["truncated"] = False
        out["display_text_range"] = [0, len(tweet.text)]
    else:
        out["text"] = tweet.text if len(tweet.text) <= 140 else tweet.text[:139] + "…"
        out["truncated"] = len(tweet.text) > 140
    out["entities"] = {
        "hashtags": [{"text": tag, "indices": [a, b]} for a, b, tag in ents["hashtags"]],
        "symbols": [],
        "user_mentions": [
            {"screen_name": u.screen_name, "name": u.name, "id": u.id, "id_str": str(u.id), "indices": [a, b]}
            for a, b, u in ents["mentions"]
        ],
        "urls": [
            {"url": url, "expanded_url": exp, "display_url": _display_url(exp), "indices": [a, b]}
            for a, b, (url, exp) in ents["urls"]
        ],
    }
    reply_user = world.user(tweet.in_reply_to_user_id) if tweet.in_reply_to_user_id else None
    out.update(
        {
            "source": tweet.source,
            "in_reply_to_status_id": tweet.in_reply_to_status_id,
            "in_reply_to_status_id_str": str(tweet.in_reply_to_status_id) if tweet.in_reply_to_status_id else None,
            "in_reply_to_user_id": tweet.in_reply_to_user_id,
            "in_reply_to_user_id_str": str(tweet.in_reply_to_user_id) if tweet.in_reply_to_user_id else None,
            "in_reply_to_screen_name": reply_user.screen_name if reply_user else None,
            "user": (
                {"id": tweet.author_id, "id_str": str(tweet.author_id)}
                if trim_user or author is None
                else v1_user(world, author, include_status=False)
            ),
            "geo": None,
            "coordinates": None,
            "place": None,
            "contributors": None,
        }
    )
    if tweet.retweeted_status_id and embed:
        original = world.tweet(tweet.retweeted_status_id)
        if original is not None and not original.deleted:
            out["retweeted_status"] = v1_tweet(world, original, trim_user=trim_user, extended=extended)
    out["is_quote_status"] = bool(tweet.quoted_status_id)
    if tweet.quoted_status_id:
        out["quoted_status_id"] = tweet.quoted_status_id
        out["quoted_status_id_str"] = str(tweet.quoted_status_id)
        quoted = world.tweet(tweet.quoted_status_id) if embed else None
        if quoted is not None and not quoted.deleted:
            out["quoted_status"] = v1_tweet(world, quoted, trim_user=trim_user, extended=extended, embed=False)
    retweets, likes = tweet.metrics()[:2]
    out.update(
        {
            "retweet_count": retweets,
            "favorite_count": likes,
            "favorited": False,
            "retweeted": False,
            "possibly_sensitive": tweet.possibly_sensitive,
            "lang": tweet.lang,
        }
    )
    return out


# --- v2 ---------------------------------------------------------------------------


def v2_user(world: World, user: User, fields: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": str(user.id), "name": user.name, "username": user.screen_name}
    for f in fields:
        if f == "created_at":
            out["created_at"] = v2_date(user.created_at)
        elif f == "description":
            out["description"] = user.description
        elif f == "location" and user.location:
            out["location"] = user.location
        elif f == "url":
            out["url"] = user.url or ""
        elif f == "entities" and user.url:
            out["entities"] = {"url": {"urls": [{"start": 0, "end": len(user.url), "url": user.url, "expanded_url": user.url, "display_url": _display_url(user.url)}]}}
        elif f == "protected":
            out["protected"] = user.protected
        elif f == "verified":
            out["verified"] = user.verified
        elif f == "verified_type":
            out["verified_type"] = "blue" if user.verified else "none"
        elif f == "profile_image_url":
            out["profile_image_url"] = user.profile_image_url
        elif f == "public_metrics":
            out["public_metrics"] = {
                "followers_count": user.followers_count,
                "following_count": user.friends_count,
                "tweet_count": user.statuses_count,
                "listed_count": user.listed_count,
                "like_count": user.favourites_count,
            }
        elif f == "pinned_tweet_id":
            pinned = pinned_tweet_id(world, user)
            if pinned is not None:
                out["pinned_tweet_id"] = str(pinned)
        elif f == "most_recent_tweet_id":
            recent = most_recent_tweet_id(world, user)
            if recent is not None:
                out["most_recent_tweet_id"] = str(recent)
    return out


def pinned_tweet_id(world: World, user: User) -> int | None:
    # A deterministic minority of accounts pin their newest tweet.
    return most_recent_tweet_id(world, user) if user.index % 7 == 3 else None


def most_recent_tweet_id(world: World, user: User) -> int | None:
    if user.protected:
        return None
    timeline = world.timeline(user.id)
    return timeline[0] if timeline else None


def v2_tweet(world: World, tweet: Tweet, fields: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": str(tweet.id), "text": tweet.text, "edit_history_tweet_ids": [str(tweet.id)]}
    for f in fields:
        if f == "author_id":
            out["author_id"] = str(tweet.author_id)
        elif f == "created_at":
            out["created_at"] = v2_date(tweet.created_at)
        elif f == "lang":
            out["lang"] = tweet.lang
        elif f == "source":
            out["source"] = "Twitter Web App"
        elif f == "possibly_sensitive":
            out["possibly_sensitive"] = tweet.possibly_sensitive
        elif f == "conversation_id":
            out["conversation_id"] = str(conversation_id(world, tweet))
        elif f == "in_reply_to_user_id" and tweet.in_reply_to_user_id:
            out["in_reply_to_user_id"] = str(tweet.in_reply_to_user_id)
        elif f == "reply_settings":
            out["reply_settings"] = "everyone"
        elif f == "edit_controls":
            out["edit_controls"] = {"edits_remaining": 5, "is_edit_eligible": False, "editable_until": v2_date(tweet.created_at)}
        elif f == "public_metrics":
            m = tweet.metrics()  # one look-up, not one per count
            out["public_metrics"] = {
                "retweet_count": m.retweets,
                "reply_count": m.replies,
                "like_count": m.likes,
                "quote_count": m.quotes,
                "bookmark_count": 0,
                "impression_count": m.likes * 40 + m.retweets * 90,
            }
        elif f == "referenced_tweets":
            refs = referenced(tweet)
            if refs:
                out["referenced_tweets"] = [{"type": kind, "id": str(tid)} for kind, tid in refs]
        elif f == "entities":
            ents = _entities(world, tweet)
            rendered: dict[str, Any] = {}
            if ents["hashtags"]:
                rendered["hashtags"] = [{"start": a, "end": b, "tag": tag} for a, b, tag in ents["hashtags"]]
            if ents["mentions"]:
                rendered["mentions"] = [{"start": a, "end": b, "username": u.screen_name, "id": str(u.id)} for a, b, u in ents["mentions"]]
            if ents["urls"]:
                rendered["urls"] = [
                    {"start": a, "end": b, "url": url, "expanded_url": exp, "display_url": _display_url(exp)}
                    for a, b, (url, exp) in ents["urls"]
                ]
            if rendered:
                out["entities"] = rendered
    return out


def referenced(tweet: Tweet) -> list[tuple[str, int]]:
    refs = []
    if tweet.retweeted_status_id:
        refs.append(("retweeted", tweet.retweeted_status_id))
    if tweet.quoted_status_id:
        refs.append(("quoted", tweet.quoted_status_id))
    if tweet.in_reply_to_status_id:
        refs.append(("replied_to", tweet.in_reply_to_status_id))
    return refs


def conversation_id(world: World, tweet: Tweet) -> int:
    """The root of the reply chain (bounded walk: chains in the world are short)."""
    current = tweet
    for _ in range(50):
        if not current.in_reply_to_status_id:
            return current.id
        parent = world.tweet(current.in_reply_to_status_id)
        if parent is None:
            return current.in_reply_to_status_id
        current = parent
    return current.id


def v2_tweet_includes(
    world: World, tweets: list[Tweet], expansions: set[str], user_fields: list[str], tweet_fields: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """The ``includes`` object for a page of tweets."""
    users: dict[int, User] = {}
    inc_tweets: dict[int, Tweet] = {}

    def add_user(uid: int | None) -> None:
        if uid and uid not in users:
            u = world.user(uid)
            if u is not None and not u.suspended and not u.deleted:
                users[uid] = u

    for t in tweets:
        if "author_id" in expansions:
            add_user(t.author_id)
        if "in_reply_to_user_id" in expansions:
            add_user(t.in_reply_to_user_id)
        if "entities.mentions.username" in expansions:
            for uid in t.mentions:
                add_user(uid)
        if "referenced_tweets.id" in expansions or "referenced_tweets.id.author_id" in expansions:
            for _, tid in referenced(t):
                ref = world.tweet(tid)
                if ref is not None and not ref.deleted:
                    if "referenced_tweets.id" in expansions:
                        inc_tweets.setdefault(tid, ref)
                    if "referenced_tweets.id.author_id" in expansions:
                        add_user(ref.author_id)
    out: dict[str, list[dict[str, Any]]] = {}
    if users:
        out["users"] = [v2_user(world, u, user_fields) for u in users.values()]
    if inc_tweets:
        out["tweets"] = [v2_tweet(world, t, tweet_fields) for t in inc_tweets.values()]
    return out


def v2_user_includes(world: World, users: list[User], expansions: set[str], tweet_fields: list[str]) -> dict[str, list[dict[str, Any]]]:
    tweets = []
    for u in users:
        tid = pinned_tweet_id(world, u) if "pinned_tweet_id" in expansions else None
        if tid is None and "most_recent_tweet_id" in expansions:
            tid = most_recent_tweet_id(world, u)
        if tid is not None:
            t = world.tweet(tid)
            if t is not None:
                tweets.append(v2_tweet(world, t, tweet_fields))
    return {"tweets": tweets} if tweets else {}
