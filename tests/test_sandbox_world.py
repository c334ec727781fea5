"""The sandbox's synthetic world: determinism, graph consistency, ids, tweets, search, ground truth."""

from __future__ import annotations

import copy
import pickle
import random
import re
import statistics
from collections import deque
from datetime import timedelta

import pytest

from tweetform.sandbox.world import (
    MAX_USERS,
    TIMELINE_CAP,
    TWITTER_EPOCH_MS,
    VOCABULARY,
    WORLD_NOW,
    Tweet,
    User,
    World,
    tokenize,
)

SEARCH_WORLD_USERS = 2_000


@pytest.fixture(scope="module")
def w3k() -> World:
    return World(seed=3, users=3_000)


@pytest.fixture(scope="module")
def w2k() -> World:
    return World(seed=1, users=SEARCH_WORLD_USERS)


def visible(world: World, uid: int) -> bool:
    u = world.user(uid)
    return u is not None and not (u.protected or u.suspended or u.deleted)


def sample_ids(world: World, n: int, seed: int = 0) -> list[int]:
    rnd = random.Random(seed)
    top = [world.id_of(i) for i in range(min(10, world.users))]
    return top + [world.id_of(rnd.randrange(world.users)) for _ in range(n - len(top))]


# --- construction, determinism ------------------------------------------------------------------


def built(world: World) -> dict[str, int]:
    """How many entries each of the world's lazy caches holds: what has been generated so far."""
    return {name: fn.cache_info().currsize for name, fn in vars(world).items() if hasattr(fn, "cache_info")}


#: the caches that hold one user's whole list: building them for users nobody asked about is the cost
LIST_CACHES = ("_friends_ids", "_followers_ids", "_timeline_ids")


def test_construction_is_lazy_and_validated() -> None:
    world = World(seed=1, users=10_000)
    assert built(world) and not any(built(world).values())  # constructing generates nothing
    assert repr(world) == "World(seed=1, users=10000, search_users=2000)"
    assert world.now == WORLD_NOW and world.now.utcoffset() == timedelta(0)
    World(seed=1, users=MAX_USERS)
    for bad in (0, -5, MAX_USERS + 1, 2.5):
        with pytest.raises(ValueError):
            World(seed=1, users=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        World(seed=1, users=10, search_users=-1)


def test_same_seed_same_world_different_seed_different_world() -> None:
    a, b, c = World(seed=7, users=3_000), World(seed=7, users=3_000), World(seed=8, users=3_000)
    assert a.examples() == b.examples()
    ids = sample_ids(a, 30)
    for uid in ids:
        assert a.user(uid) == b.user(uid)
        assert a.following(uid) == b.following(uid)
        assert a.followers(uid) == b.followers(uid)
        assert a.timeline(uid) == b.timeline(uid)
    for tid in a.timeline(a.id_of(1))[:20]:
        assert a.tweet(tid) == b.tweet(tid)
    assert a.search("data") == b.search("data")
    differs = sum(a.followers(uid) != c.followers(uid) or a.timeline(uid) != c.timeline(uid) for uid in ids)
    assert differs > len(ids) // 2
    assert [a.user(a.id_of(i)).screen_name for i in range(1, 20)] != [c.user(c.id_of(i)).screen_name for i in range(1, 20)]


def test_copies_and_pickles_are_the_same_world(w3k: World) -> None:
    assert copy.deepcopy(w3k) is w3k
    clone = pickle.loads(pickle.dumps(w3k))
    assert repr(clone) == repr(w3k)
    uid = w3k.id_of(42)
    assert clone.following(uid) == w3k.following(uid)
    user = w3k.user(uid)
    assert copy.deepcopy(user) == user  # the world reference inside is not copied


# --- ids and names ------------------------------------------------------------------------------


def test_id_mapping_round_trips_and_rejects_unknown_ids(w3k: World) -> None:
    ids = [w3k.id_of(i) for i in range(w3k.users)]
    assert ids[0] == 12
    assert len(set(ids)) == len(ids)
    assert all(0 < x < 2**63 for x in ids)
    big = [x for x in ids if x > 2**53]
    assert len(big) >= w3k.users // 3 - 1
    assert any(2**32 < x < 2**53 for x in ids) and any(x < 2**31 for x in ids)
    for i, uid in enumerate(ids):
        assert w3k.index_of(uid) == i
    known = set(ids)
    rnd = random.Random(1)
    probes = [x + d for x in rnd.sample(ids, 300) for d in (-1, 1, 2**22)] + [rnd.randrange(2**63) for _ in range(300)]
    for x in probes:
        if x not in known:
            assert w3k.index_of(x) is None, x
    for bad in (0, 11, -12, 2**63, 2**64 + 12, True, "12", 12.0, None):
        assert w3k.index_of(bad) is None  # type: ignore[arg-type]
        assert w3k.user(bad) is None  # type: ignore[arg-type]
        assert w3k.following(bad) == () and w3k.followers(bad) == () and w3k.timeline(bad) == ()  # type: ignore[arg-type]
    with pytest.raises(IndexError):
        w3k.id_of(w3k.users)


def test_screen_names_are_unique_valid_and_invertible(w3k: World) -> None:
    names = [w3k.user(w3k.id_of(i)).screen_name for i in range(w3k.users)]
    assert names[0] == "jack"
    assert len({n.lower() for n in names}) == len(names)
    for i, name in enumerate(names):
        assert re.fullmatch(r"[A-Za-z0-9_]{1,15}", name), name
        assert w3k.index_of_screen_name(name) == i
    for i in (0, 1, 17, 2_999):
        name = names[i]
        for variant in (name.upper(), name.lower(), "@" + name):
            user = w3k.user_by_screen_name(variant)
            assert user is not None and user.index == i
    for bad in ("", "nobody", "jack2", names[5] + "0", names[5][:-1] + "9999999", "a" * 16, "12"):
        if bad.lower() not in {n.lower() for n in names}:
            assert w3k.user_by_screen_name(bad) is None, bad


def test_users_have_the_documented_fields(w3k: World) -> None:
    now = w3k.now
    for uid in sample_ids(w3k, 60):
        u = w3k.user(uid)
        assert isinstance(u, User) and u.id == uid and u.index == w3k.index_of(uid)
        assert u.created_at.tzinfo is not None and u.created_at < now
        assert isinstance(u.name, str) and u.name and isinstance(u.description, str)
        assert u.url is None or u.url.startswith("https://")
        assert u.profile_image_url.startswith("https://")
        assert sum((u.protected, u.suspended, u.deleted)) <= 1
        assert u.followers_count == len(w3k.followers(uid))
        assert u.friends_count == len(w3k.following(uid))
        assert u.statuses_count == len(w3k.timeline(uid))
        assert u.listed_count >= 0 and u.favourites_count >= 0
    jack = w3k.user(12)
    assert jack.screen_name == "jack" and jack.created_at.year == 2006 and not jack.protected


def test_account_states_have_the_documented_rates() -> None:
    world = World(seed=5, users=100_000)
    rnd = random.Random(2)
    states = [world.state(world.id_of(rnd.randrange(64, world.users))) for _ in range(20_000)]
    share = {k: states.count(k) / len(states) for k in ("protected", "suspended", "deleted")}
    assert 0.02 < share["protected"] < 0.045
    assert 0.012 < share["suspended"] < 0.03
    assert 0.006 < share["deleted"] < 0.02
    assert world.state(12) == "normal"


# --- the follow graph ---------------------------------------------------------------------------


def test_following_and_followers_are_exact_inverses(w3k: World) -> None:
    for uid in sample_ids(w3k, 200, seed=3):
        friends = w3k.following(uid)
        followers = w3k.followers(uid)
        for v in friends:
            assert uid in set(w3k.followers(v)), (uid, v)
        for v in followers:
            assert uid in set(w3k.following(v)), (uid, v)


def test_whole_small_graph_is_consistent() -> None:
    world = World(seed=9, users=700)
    forward = {(uid, v) for i in range(world.users) for uid in [world.id_of(i)] for v in world.following(uid)}
    backward = {(v, uid) for i in range(world.users) for uid in [world.id_of(i)] for v in world.followers(uid)}
    assert forward == backward
    assert len(forward) > 5 * world.users


def test_lists_exclude_self_suspended_deleted_and_keep_a_fixed_order(w3k: World) -> None:
    for uid in sample_ids(w3k, 120, seed=4):
        for lst in (w3k.following(uid), w3k.followers(uid)):
            assert uid not in lst
            assert len(set(lst)) == len(lst)
            assert all(w3k.state(v) in ("normal", "protected") for v in lst)
            idx = [w3k.index_of(v) for v in lst]
            assert idx == sorted(idx, reverse=True)
            assert w3k.following(uid) == w3k.following(uid)
    ex = w3k.examples()
    for uid in ex["suspended"] + ex["deleted"]:
        assert w3k.following(uid) == () and w3k.followers(uid) == () and w3k.timeline(uid) == ()
    protected = ex["protected"][0]
    assert w3k.following(protected) or w3k.followers(protected)  # ground truth exists behind the 401


def test_degree_distributions_small_world(w2k: World) -> None:
    top = len(w2k.followers(12))
    assert top > 1_000  # pagination at 200 and 1000 per page is real
    friends = [len(w2k.following(w2k.id_of(i))) for i in range(0, w2k.users, 7)]
    assert 2 <= statistics.median(friends) <= 40
    assert max(friends) > 200 or w2k.examples()["many_friends"]


def test_degree_distributions_large_world() -> None:
    world = World(seed=1, users=100_000)
    top = [len(world.followers(world.id_of(i))) for i in range(5)]
    assert 30_000 <= top[0] <= 65_000
    assert all(x > 10_000 for x in top)
    rnd = random.Random(8)
    ids = [world.id_of(rnd.randrange(world.users)) for _ in range(400)]
    assert 3 <= statistics.median(len(world.following(u)) for u in ids) <= 60
    assert 1 <= statistics.median(len(world.followers(u)) for u in ids) <= 60


def test_million_user_world_is_lazy() -> None:
    # Laziness is asserted by what gets generated, not by a clock (a loaded machine has no fixed speed).
    world = World(seed=1, users=1_000_000)
    assert not any(built(world).values())
    rnd = random.Random(4)
    asked = {world.id_of(rnd.randrange(world.users)) for _ in range(20)}
    for uid in asked:
        world.following(uid), world.followers(uid), world.timeline(uid), world.user(uid).followers_count
    sizes = built(world)
    for name in (*LIST_CACHES, "_user"):
        assert sizes[name] == len(asked), (name, sizes)  # the lists of the users asked about, no other
    assert len(world.followers(12)) > 300_000
    last = world.id_of(world.users - 1)
    assert world.index_of(last) == world.users - 1


# --- counts: exact without the lists, and cheap ------------------------------------------------


def count_paths(world: World, path: str) -> World:
    """Force one of the two ways followers and friends are counted (private knobs, on purpose)."""
    if path == "tables":  # every tier's follower-count table built up front, friend prefix sums
        for t in range(world._tiers):
            world._follower_count_table(t)
        world._friend_work = 10**18
    else:  # walks: for followers, on every tier a table is not immediately cheap for
        world._fcount_work = [-(10**18)] * world._tiers
        world._friend_work = -(10**18)
    return world


@pytest.mark.parametrize("path", ["walk", "tables"])
@pytest.mark.parametrize("users", [1, 2, 3, 5, 64, 65, 300, 1_025])
def test_counts_equal_list_lengths_in_small_worlds(users: int, path: str) -> None:
    world = count_paths(World(seed=users, users=users), path)
    lists = World(seed=users, users=users)
    for i in range(users):
        uid = world.id_of(i)
        expected = (len(lists.followers(uid)), len(lists.following(uid)), len(lists.timeline(uid)))
        assert tuple(world.counts(uid)) == expected, (i, path)


@pytest.mark.parametrize("path", ["walk", "tables"])
def test_counts_equal_list_lengths_on_every_tier(path: str) -> None:
    world = count_paths(World(seed=13, users=40_000), path)
    lists = World(seed=13, users=40_000)
    rnd = random.Random(5)
    idx = list(range(70)) + [rnd.randrange((1 << t) - 1, min(2 << t, world.users + 1) - 1)
                             for t in range(world._tiers) for _ in range(12)]
    for i in idx:
        uid = world.id_of(i)
        user = world.user(uid)
        assert user.followers_count == len(lists.followers(uid)), (i, path)
        assert user.friends_count == len(lists.following(uid)), (i, path)
        assert user.statuses_count == len(lists.timeline(uid)), (i, path)


def test_lists_are_the_cached_tuples(w3k: World) -> None:
    for uid in (12, w3k.id_of(7), w3k.id_of(2_999)):
        for get in (w3k.followers, w3k.following, w3k.timeline, w3k.reachable_timeline):
            got = get(uid)
            assert isinstance(got, tuple)
            assert get(uid) == got
        assert w3k.followers(uid) is w3k.followers(uid)  # no copy per call
        assert w3k.following(uid) is w3k.following(uid)
        assert w3k.timeline(uid) is w3k.timeline(uid)


def test_counts_and_examples_are_cheap_in_a_large_world() -> None:
    # Counting used to build every counted user's lists (~0.3 ms a user, examples() 1-7 s).
    # Asserted by what is generated: counting builds no counted user's lists.
    world = World(seed=1, users=100_000)
    ex = world.examples()
    assert ex["many_followers"] and ex["many_friends"] and ex["ordinary"]
    assert all(built(world)[name] == 0 for name in LIST_CACHES)
    page = world.followers(12)[:10_000]
    for uid in page:
        world.counts(uid)
    sizes = built(world)
    assert sizes["_counts"] == len(set(page))
    assert (sizes["_friends_ids"], sizes["_followers_ids"], sizes["_timeline_ids"]) == (0, 1, 0)  # 12's followers only
    rnd = random.Random(3)
    for uid in rnd.sample(page, 40):
        assert world.counts(uid) == (len(world.followers(uid)), len(world.following(uid)), len(world.timeline(uid)))


# --- examples -----------------------------------------------------------------------------------


@pytest.mark.parametrize("users", [200, 2_000])
def test_examples_guarantees(users: int) -> None:
    world = World(seed=21, users=users)
    ex = world.examples()
    for key in ("protected", "suspended", "deleted", "long_timeline"):
        assert len(ex[key]) >= 2, key
        assert all(1 <= world.index_of(uid) <= 60 for uid in ex[key]), key
    assert all(world.user(uid).protected for uid in ex["protected"])
    assert all(world.user(uid).suspended for uid in ex["suspended"])
    assert all(world.user(uid).deleted for uid in ex["deleted"])
    for uid in ex["long_timeline"]:
        assert visible(world, uid) and len(world.timeline(uid)) > TIMELINE_CAP
        assert len(world.reachable_timeline(uid)) == TIMELINE_CAP
    assert ex["many_followers"] and all(visible(world, uid) for uid in ex["many_followers"])
    if users >= 2_000:
        assert all(world.user(uid).followers_count > 1_000 for uid in ex["many_followers"])
        assert ex["many_friends"] and all(world.user(uid).friends_count > 200 for uid in ex["many_friends"])
    assert ex["ordinary"]
    for uid in ex["ordinary"]:
        assert visible(world, uid) and 5 <= len(world.following(uid)) <= 60
    ex["ordinary"].append(1)
    assert 1 not in world.examples()["ordinary"]  # callers get copies


# --- tweets -------------------------------------------------------------------------------------


def test_timelines_are_newest_first_and_decode(w3k: World) -> None:
    lengths = []
    for uid in sample_ids(w3k, 80, seed=5) + w3k.examples()["long_timeline"]:
        tl = w3k.timeline(uid)
        lengths.append(len(tl))
        assert isinstance(tl, tuple)  # the cached, immutable sequence: no copy per call
        assert list(tl) == sorted(tl, reverse=True) and len(set(tl)) == len(tl)
        assert w3k.reachable_timeline(uid) == tl[:TIMELINE_CAP]
        for tid in tl[:5] + tl[-5:]:
            assert tid > 2**53
            idx, _seq = w3k.decode_tweet_id(tid)
            assert idx == w3k.index_of(uid)
            t = w3k.tweet(tid)
            assert t.id == tid and t.author_id == uid and not t.deleted
            assert t.created_at <= w3k.now
            assert int(t.created_at.timestamp() * 1000) == (tid >> 22) + TWITTER_EPOCH_MS
    assert max(lengths) > TIMELINE_CAP
    assert any(0 < n <= 200 for n in lengths)
    newest = [w3k.tweet(w3k.timeline(w3k.id_of(i))[0]).created_at for i in range(1, 40) if w3k.timeline(w3k.id_of(i))]
    assert sum(w3k.now - t < timedelta(days=7) for t in newest) > len(newest) // 2


def test_bogus_tweet_ids_are_none(w3k: World) -> None:
    tl = w3k.timeline(w3k.examples()["long_timeline"][0])
    for tid in tl[:50]:
        for bogus in (tid + (1 << 22), tid - (1 << 22)):
            assert w3k.tweet(bogus) is None
    for bogus in (0, -1, 1, 12, 2**63, 2**53 + 1, True, "1", None):
        assert w3k.tweet(bogus) is None  # type: ignore[arg-type]
        assert w3k.decode_tweet_id(bogus) is None  # type: ignore[arg-type]


def test_deleted_tweets_are_hidden_from_timelines_but_exist(w3k: World) -> None:
    deleted = []
    for uid in w3k.examples()["long_timeline"]:
        gone = w3k.deleted_tweet_ids(uid)
        tl = set(w3k.timeline(uid))
        assert gone and not tl & set(gone)
        deleted += gone
        assert 0.003 < len(gone) / (len(gone) + len(tl)) < 0.03
    for tid in deleted[:30]:
        t = w3k.tweet(tid)
        assert isinstance(t, Tweet) and t.deleted and t.id == tid


def test_tweets_reference_earlier_visible_tweets(w3k: World) -> None:
    kinds = {"reply": 0, "retweet": 0, "quote": 0, "original": 0}
    for uid in sample_ids(w3k, 40, seed=6) + w3k.examples()["long_timeline"]:
        for tid in w3k.timeline(uid)[:60]:
            t = w3k.tweet(tid)
            author = w3k.user(t.author_id)
            assert all("#" + h in t.text for h in t.hashtags)
            assert all("@" + w3k.user(m).screen_name in t.text for m in t.mentions)
            assert all(url in t.text for url, _ in t.urls)
            assert len(t.text) <= 500 and t.lang in ("en", "es", "fr", "ja", "und")
            assert t.source_name in t.source
            refs = [x for x in (t.quoted_status_id, t.in_reply_to_status_id, t.retweeted_status_id) if x is not None]
            # one reference, or a quote that also replies (a quote in another thread: engagement.py's cascades)
            assert len(refs) <= 1 or (len(refs) == 2 and t.quoted_status_id and t.in_reply_to_status_id)
            if not refs:
                kinds["original"] += 1
                continue
            for other in refs:
                ref = w3k.tweet(other)
                assert ref is not None and not ref.deleted
                assert ref.id < t.id and ref.created_at <= t.created_at
                assert ref.author_id != t.author_id and visible(w3k, ref.author_id)
                assert ref.retweeted_status_id is None  # retweets point at originals
            if len(refs) == 2:
                kinds["quote that replies"] = kinds.get("quote that replies", 0) + 1
                replied = w3k.tweet(t.in_reply_to_status_id)
                assert t.text.startswith("@" + w3k.user(replied.author_id).screen_name)
                assert t.conversation_id == replied.conversation_id and t.id in w3k.reply_ids(replied.id)
                assert any(str(t.quoted_status_id) in exp for _, exp in t.urls) and t.id in w3k.quote_ids(t.quoted_status_id)
                continue
            ref = w3k.tweet(refs[0])
            ref_name = w3k.user(ref.author_id).screen_name
            if t.retweeted_status_id is not None:
                kinds["retweet"] += 1
                assert t.text == f"RT @{ref_name}: {ref.text}"
                assert t.mentions[0] == ref.author_id
            elif t.in_reply_to_status_id is not None:
                kinds["reply"] += 1
                assert t.in_reply_to_user_id == ref.author_id and t.in_reply_to_screen_name == ref_name
                assert t.text.startswith("@" + ref_name)
                assert w3k.tweet(t.conversation_id) is not None
            else:
                kinds["quote"] += 1
                assert any(str(ref.id) in exp for _, exp in t.urls)
            assert author is not None
    assert all(kinds.values()), kinds


# --- search -------------------------------------------------------------------------------------


def tweets_of(world: World, ids: list[int]) -> list[Tweet]:
    return [world.tweet(t) for t in ids]


def check_results(world: World, ids: list[int], archive: bool = False) -> list[Tweet]:
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    tweets = tweets_of(world, ids)
    for t in tweets:
        assert not t.deleted and visible(world, t.author_id)
        assert world.index_of(t.author_id) < world.search_users
        if not archive:
            assert world.now - timedelta(days=7) <= t.created_at <= world.now
    return tweets


def test_search_words_and_boolean_operators(w2k: World) -> None:
    data, research = w2k.search("data"), w2k.search("Research")
    assert len(data) > 100 and len(research) > 100
    for t in check_results(w2k, data[:300]):
        assert "data" in tokenize(t.text)
    assert w2k.search("data research") == sorted(set(data) & set(research), reverse=True)
    assert w2k.search("data OR research") == sorted(set(data) | set(research), reverse=True)
    assert w2k.search("data -research") == sorted(set(data) - set(research), reverse=True)
    python = set(w2k.search("python"))
    assert w2k.search("(data OR research) python") == sorted((set(data) | set(research)) & python, reverse=True)
    assert w2k.search("python data OR research") == sorted((python & set(data)) | set(research), reverse=True)
    assert w2k.search("data -(research OR python)") == sorted(set(data) - set(research) - python, reverse=True)
    counts = {word: len(w2k.search(word)) for word in VOCABULARY}
    assert any(0 < n < 20 for n in counts.values())


def test_search_recent_is_a_subset_of_the_archive(w2k: World) -> None:
    recent, archive = w2k.search("data"), w2k.search("data", archive=True)
    assert set(recent) < set(archive)
    older = check_results(w2k, archive[-50:], archive=True)
    assert any(w2k.now - t.created_at > timedelta(days=30) for t in older)
    assert set(w2k.search("from:jack", archive=True)) == {
        t for t in w2k.timeline(12)
    }


def test_search_operators(w2k: World) -> None:
    for t in check_results(w2k, w2k.search("#DataScience")):
        assert "datascience" in [h.lower() for h in t.hashtags]
    assert w2k.search("#datascience") == w2k.search("#DataScience") != []
    some = w2k.search("is:reply")
    assert some
    target = w2k.tweet(some[0]).in_reply_to_user_id
    name = w2k.user(target).screen_name
    mentioned = w2k.search("@" + name.upper())
    assert some[0] in mentioned
    for t in check_results(w2k, mentioned):
        assert target in t.mentions
    to = w2k.search(f"to:{name}")
    assert some[0] in to and all(t.in_reply_to_user_id == target for t in tweets_of(w2k, to))
    author = w2k.tweet(some[0]).author_id
    from_name = w2k.search(f"from:{w2k.user(author).screen_name}")
    assert from_name == w2k.search(f"from:{author}") and some[0] in from_name
    assert all(t.author_id == author for t in tweets_of(w2k, from_name))
    assert w2k.search("from:nosuchuser") == []
    es = w2k.search("lang:es")
    assert es and all(t.lang == "es" for t in tweets_of(w2k, es))
    rts = w2k.search("data is:retweet")
    assert rts and all(t.retweeted_status_id is not None for t in tweets_of(w2k, rts))
    no_rts = w2k.search("data -is:retweet")
    assert all(t.retweeted_status_id is None for t in tweets_of(w2k, no_rts))
    assert sorted(rts + no_rts, reverse=True) == w2k.search("data")
    quotes = w2k.search("is:quote")
    assert quotes and all(t.quoted_status_id is not None for t in tweets_of(w2k, quotes[:100]))


def test_search_phrases_match_adjacent_tokens(w2k: World) -> None:
    rnd = random.Random(3)
    corpus = w2k.search("the")
    for tid in rnd.sample(corpus, 40):
        t = w2k.tweet(tid)
        toks = tokenize(t.text)
        # the whole token sequence, as a phrase, finds the tweet: index and text agree exactly
        assert tid in w2k.search(f'"{" ".join(toks)}" from:{t.author_id}')
        k = rnd.randrange(len(toks) - 2)
        phrase = toks[k : k + 3]
        hits = w2k.search('"' + " ".join(phrase) + '"')
        assert tid in hits
        for h in tweets_of(w2k, hits[:50]):
            ht = tokenize(h.text)
            assert any(ht[i : i + 3] == phrase for i in range(len(ht) - 2))
    assert set(w2k.search('-"data the" data')) == set(w2k.search("data")) - set(w2k.search('"data the"'))


@pytest.mark.parametrize(
    "query",
    ["", "   ", "data OR", "OR data", "data OR OR research", "(data", "data)", "()", '"unterminated',
     "-data", "-data -research", "-!!!", "foo:bar", "is:banana", "from:", "-"],
)
def test_bad_queries_raise_a_clear_value_error(w2k: World, query: str) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        w2k.search(query)


@pytest.mark.parametrize("query", ["!!!", "?", "...", '""', '"?!"', "!!! OR ???", "(!!!)"])
def test_punctuation_only_queries_find_nothing(w2k: World, query: str) -> None:
    """Like the API: a query of punctuation only is answered with an empty result, not an error."""
    assert w2k.search(query) == [] and w2k.search(query, archive=True) == []


def test_punctuation_terms_beside_words_are_ignored(w2k: World) -> None:
    data = w2k.search("data")
    assert data and w2k.search("data !!!") == data and w2k.search("data -???") == data
    assert w2k.search("!!! OR data") == data


def test_search_builds_its_index_once_and_reuses_it() -> None:
    # The spec's speed (seconds for the first search, ms afterwards) rests on this: the corpus is
    # indexed on the first search only and every later search reads that index. (bench/ times it.)
    world = World(seed=11, users=SEARCH_WORLD_USERS)
    assert world._indexes == {}
    first = world.search("data")
    index = world._indexes[False]
    assert world.search("research OR science") and world._indexes[False] is index
    assert world.search("data") == first and set(world._indexes) == {False}


def test_search_corpus_respects_search_users() -> None:
    world = World(seed=1, users=3_000, search_users=300)
    ids = world.search("the", archive=True)
    assert ids and all(world.decode_tweet_id(t)[0] < 300 for t in ids)
    assert World(seed=1, users=500, search_users=0).search("data") == []


# --- reachable ----------------------------------------------------------------------------------


def naive_bfs(world: World, seeds: list[int], depth: int, direction: str) -> list[int]:
    get = world.following if direction == "friends" else world.followers
    order, seen = [], set()
    queue: deque[tuple[int, int]] = deque()
    for s in seeds:
        if s not in seen:
            seen.add(s)
            queue.append((s, 1))
    while queue:
        uid, level = queue.popleft()
        order.append(uid)
        user = world.user(uid)
        if level == depth or user is None or user.protected or user.suspended or user.deleted:
            continue
        for v in get(uid):
            if v not in seen:
                seen.add(v)
                queue.append((v, level + 1))
    return order


def test_reachable_matches_a_naive_bfs() -> None:
    world = World(seed=4, users=400)
    ex = world.examples()
    rnd = random.Random(9)
    seed_sets = [
        [12],
        [world.id_of(rnd.randrange(64, 400))],
        [ex["protected"][0], ex["suspended"][0], world.id_of(300), world.id_of(300)],
        [ex["ordinary"][0], ex["deleted"][0], 999_999_999_999],
    ]
    for seeds in seed_sets:
        for direction in ("friends", "followers"):
            for depth in (1, 2, 3):
                expected = naive_bfs(world, seeds, depth, direction)
                assert world.reachable(seeds, depth, direction) == expected
                for cap in (0, 1, 5, len(expected) // 2):
                    assert world.reachable(seeds, depth, direction, max_users=cap) == expected[:cap]
    assert world.reachable([ex["protected"][0]], 3) == [ex["protected"][0]]
    assert world.reachable([ex["suspended"][0]], 2, "followers") == [ex["suspended"][0]]
    friends = world.following(ex["ordinary"][0])
    assert world.reachable([ex["ordinary"][0]], 2) == [ex["ordinary"][0], *friends]


def test_reachable_rejects_bad_arguments(w3k: World) -> None:
    with pytest.raises(ValueError):
        w3k.reachable([12], 0)
    with pytest.raises(ValueError):
        w3k.reachable([12], 2, "sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        w3k.reachable([12], 2, max_users=-1)
