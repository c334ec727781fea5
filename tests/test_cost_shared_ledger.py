"""The billed-ids dedupe shared by workers (SharedCostLedger) on a real Redis, with each worker's memory of the
ids Redis already said are billed: the counts are the billing rule's, whatever each worker remembers or forgets."""

from __future__ import annotations

import random
from typing import Iterator

import pytest
import redis

from tweetform.cost.ledger import CostLedger, SharedCostLedger
from tweetform.state.redis import compact, keys

PRICES = {"follow": 0.010, "user": 0.010, "post": 0.005}


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def billed_in_redis(r: redis.Redis, app: str, kind: str, day: str) -> set[str]:
    layout = keys.cost_seen(app, kind, day)
    return {m.decode() for b in compact.bucket_keys(r, layout) for m in r.smembers(b)} - {"0"}


def test_workers_bill_each_id_once_per_app_kind_and_day_as_the_rule_says(r: redis.Redis):
    """Three workers share pages of overlapping ids over two apps, two kinds and two days, each remembering at most
    40 ids (so each forgets often), some pages served twice: every page is charged what one exact ledger of the rule
    charges it, and the Redis sets hold exactly the rule's ids."""
    rnd = random.Random(5)
    workers = [SharedCostLedger(r, PRICES, known_limit=40) for _ in range(3)]
    rule = CostLedger(PRICES)
    universe = [str(rnd.randrange(10**9, 10**19)) for _ in range(150)]
    asked = 0
    last: dict[int, tuple] = {}
    for n in range(400):
        day = "2026-12-06" if n < 250 else "2026-12-07"
        w = rnd.randrange(3)
        worker = workers[w]
        if w in last and rnd.random() < 0.3:  # the same page again (a retried request, another job's)
            app, groups = last[w]
        else:
            app = rnd.choice(["app1", "app2"])
            groups = [(kind, rnd.sample(universe, rnd.randrange(1, 20))) for kind in rnd.sample(["follow", "user", "post"], 2)]
        last[w] = (app, groups)
        before = r.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
        assert worker.charge("j", app, day, groups) == rule.charge("j", app, day, groups), n
        asked += r.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0) - before
    assert sum(w.total for w in workers) == rule.total and rule.total > 0
    for app in ("app1", "app2"):
        assert sum(w.by_app.get(app, 0) for w in workers) == rule.by_app[app]
    for (app, kind, day), ids in rule.seen.items():
        assert billed_in_redis(r, app, kind, day) == ids
    assert asked < 2 * 400 - 100  # groups known to their worker were not asked about


def test_pages_charged_when_redis_answers_are_charged_as_the_rule_says_whenever_the_round_trips_go(r: redis.Redis):
    """The cost middleware's way (charge_later): each worker's billed-ids calls wait in its outbox for a round trip
    that comes at random moments, so a page may be asked about while an earlier page of the same ids still waits, in
    this worker's outbox or another's. Every page's cost, told when its answers come, is what one exact ledger of
    the rule charges, summed per job and app; only pages whose ids all are known billed are told at once."""
    from tweetform.state.redis import outbox

    rnd = random.Random(11)
    boxes = [outbox.Outbox(r) for _ in range(3)]
    for box in boxes:
        box.start()
    workers = [SharedCostLedger(r, PRICES, known_limit=40, outbox=box) for box in boxes]
    rule = CostLedger(PRICES)
    universe = [str(rnd.randrange(10**9, 10**19)) for _ in range(120)]
    told: list[tuple[int, int]] = []
    pages = []
    for n in range(300):
        day = "2026-12-06" if n < 200 else "2026-12-07"
        app = rnd.choice(["app1", "app2"])
        groups = [(kind, rnd.sample(universe, rnd.randrange(1, 15))) for kind in rnd.sample(["follow", "user", "post"], 2)]
        pages.append((app, day, groups))
        w = rnd.randrange(3)
        workers[w].charge_later("j", app, day, groups, lambda *got: told.append(got))
        if rnd.random() < 0.3:  # a round trip of one of the workers (a pop, a push with its acks, the timer)
            boxes[rnd.randrange(3)].flush()
    for box in boxes:
        box.stop()
    # which page pays for an id two pages share depends on which call Redis ran first: the totals must agree
    for app, day, groups in pages:
        rule.charge("j", app, day, groups)
    assert len(told) == len(pages) and not any(unbilled for _, unbilled in told) and not any(w.waiting for w in workers)
    assert sum(cost for cost, _ in told) == rule.total == sum(w.total for w in workers) and rule.total > 0
    for app in ("app1", "app2"):
        assert sum(w.by_app.get(app, 0) for w in workers) == rule.by_app[app]
    for kind in ("follow", "user", "post"):
        assert sum(w.resources.get(kind, 0) for w in workers) == rule.resources[kind]
    for (app, kind, day), ids in rule.seen.items():
        assert billed_in_redis(r, app, kind, day) == ids


def test_a_billed_ids_call_whose_answer_is_lost_after_redis_ran_it_tells_the_most_the_page_may_have_cost(r, redis_url):
    """The link times out after Redis ran the call (Redis busy with the round trip's next command, a blocking pop,
    past the client's timeout): the ids are in the day's set, so the call sent again says none is new. The page is
    told cost 0 (what the rule can say) and, beyond it, what its ids may have cost, which its budget settles as spent.
    Before: told 0 and 0, the page's reservation settled at nothing though the API billed the page: a budget could
    be overrun by every such page."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from tweetform.state.redis import outbox, scripts

    # redis-py re-sends a pipeline itself first (its retries): here none, what a worker meets once they all failed
    timing_out = redis.Redis.from_url(redis_url, socket_timeout=0.2, retry=Retry(NoBackoff(), 0))
    try:
        box = outbox.Outbox(timing_out)
        box.start()
        ledger = SharedCostLedger(timing_out, PRICES, outbox=box)
        told: list[tuple[int, int]] = []
        ledger.charge_later("j", "app", "2026-12-06", [("follow", ["11", "12", "13"])], lambda *got: told.append(got))
        with pytest.raises(redis.TimeoutError):
            scripts.execute(timing_out, lambda pipe: pipe.blpop(["nothing"], 1), box)
        assert told == [] and billed_in_redis(r, "app", "follow", "2026-12-06") == {"11", "12", "13"}
        box.flush()  # sent again with the next round trip
        assert told == [(0, 30_000)] and ledger.total == 0 and not ledger.waiting
    finally:
        timing_out.close()


def test_a_worker_that_knows_every_id_of_a_page_asks_redis_nothing_and_another_day_bills_them_again(r: redis.Redis):
    first, second = SharedCostLedger(r, PRICES), SharedCostLedger(r, PRICES)
    page = [("follow", ["11", "12", "13"])]
    assert first.charge("j", "app", "2026-12-06", page) == 30_000
    calls = r.info("commandstats")["cmdstat_evalsha"]["calls"]
    assert first.charge("j", "app", "2026-12-06", page) == 0
    assert r.info("commandstats")["cmdstat_evalsha"]["calls"] == calls  # known: no round trip
    assert second.charge("j", "app", "2026-12-06", page + [("follow", ["14"])]) == 10_000  # billed by the first
    assert first.charge("j", "app", "2026-12-07", page) == 30_000  # the next UTC day bills them again
    assert second.charge("j", "app", "2026-12-07", page) == 0
    assert first.charge("j", "other-app", "2026-12-07", page) == 30_000  # another app too
    assert first.charge("j", "app", "2026-12-07", [("user", ["11"])]) == 10_000  # and another kind


def test_ids_redis_did_not_answer_for_are_not_remembered(r: redis.Redis):
    """Redis refuses the call (full: maxmemory reached, noeviction): the page's ids are asked again next time and
    billed once, by whichever worker asks first."""
    worker, other = SharedCostLedger(r, PRICES), SharedCostLedger(r, PRICES)
    assert worker.charge("j", "app", "2026-12-06", [("follow", ["1", "2"])]) == 20_000
    policy = r.config_get("maxmemory-policy")["maxmemory-policy"]
    r.config_set("maxmemory-policy", "noeviction")
    r.config_set("maxmemory", 1)
    try:
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            worker.charge("j", "app", "2026-12-06", [("follow", ["2", "3", "4"])])
    finally:  # the session's Redis as it was
        r.config_set("maxmemory", 0)
        r.config_set("maxmemory-policy", policy)
    assert worker.charge("j", "app", "2026-12-06", [("follow", ["2", "3"])]) == 10_000  # 3 was never billed
    assert other.charge("j", "app", "2026-12-06", [("follow", ["3", "4"])]) == 10_000
    assert worker.charge("j", "app", "2026-12-06", [("follow", ["4"])]) == 0
    assert billed_in_redis(r, "app", "follow", "2026-12-06") == {"1", "2", "3", "4"}


def test_a_worker_asks_again_about_ids_redis_lost_when_it_restarted():
    """Redis restarted from data older than what it answered (a crash after its last fsync, an RDB snapshot, a replica
    promoted): the day's set no longer holds ids a worker heard were billed. The page that billed them was not
    acknowledged in what Redis kept, so it is fetched and billed again: the worker asks Redis again (through the new
    connection) and charges what an exact ledger over Redis's set charges, as a worker that knew nothing would;
    one that trusted its memory charged nothing, and the ids stayed out of the shared set for the rest of the day."""
    from crawling import unit_crawler

    from tweetform.state.redis import connection
    from tweetform.testing.servers import RedisServer

    server = RedisServer()
    try:
        client = connection.for_crawler(unit_crawler(None, {"REDIS_URL": server.url}))  # a worker's client
        worker = SharedCostLedger(client, PRICES)
        assert worker.charge("j", "app", "2026-12-06", [("follow", ["10"])]) == 10_000
        server.client.save()  # the data Redis comes back with
        page = [("follow", ["11", "12", "13"])]
        assert worker.charge("j", "app", "2026-12-06", page) == 30_000
        assert worker.charge("j", "app", "2026-12-06", page) == 0  # known
        server.restart(down_for=0)
        assert billed_in_redis(server.client, "app", "follow", "2026-12-06") == {"10"}
        client.ping()  # the worker's next command: the pop that takes the page again
        assert worker.charge("j", "app", "2026-12-06", page + [("follow", ["10"])]) == 30_000
        assert billed_in_redis(server.client, "app", "follow", "2026-12-06") == {"10", "11", "12", "13"}
    finally:
        server.stop()
