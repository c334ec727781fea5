"""The filtered stream end to end: ``scrapy stream rules`` and ``scrapy crawl stream`` against a real sandbox.

The sandbox's world posts new tweets as its logical clock passes their times
(``--evolve-every 3600``: generation 1's posts are dated inside the first hour
after the world's creation, none in its first minutes). Each test puts the
clock a second after the world's creation, so what a rule matches from there
up to an hour later is known before the stream connects (the sandbox's truth),
and then moves the clock through that hour while the stream runs.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from crawling import ROOT, crawl_env, demo_credentials
from cutting_proxy import CuttingProxy
from test_sandbox_stream import STREAM_WORLD
from tweetform.cost.redis_budget import spend_of
from tweetform.state.redis import scripts

RULE = "lang:es OR lang:fr"
HOUR = 3600.0


@pytest.fixture
def box(sandbox_factory: Any) -> Any:
    return sandbox_factory(*STREAM_WORLD)


def advance_until_stopped(box: Any, proc: subprocess.Popen) -> None:
    """The sandbox's clock moved through the hour in six steps, until the stream stops (long before the hour is over)."""
    for _ in range(6):
        box.post("/_sandbox/clock", {"advance": HOUR / 6})
        time.sleep(0.3)
        if proc.poll() is not None:
            break


def written_ids(lines: list[dict]) -> tuple[set[str], set[str], set[str]]:
    """What the billing rule prices in the written lines: the posts, the posts they include, the included authors."""
    posts = {line["data"]["id"] for line in lines}
    included = {t["id"] for line in lines for t in line.get("includes", {}).get("tweets", [])}
    users = {u["id"] for line in lines for u in line.get("includes", {}).get("users", [])}
    return posts, included, users


def env_for(box: Any, output: Path, credentials: list[dict] | None = None, redis_url: str | None = None) -> dict[str, str]:
    env = crawl_env(box, output, credentials if credentials is not None else demo_credentials("demo-user-1", "demo-app-1"))
    env["TWEETFORM_STREAM_READ_TIMEOUT"] = "2.0"  # the sandbox sends a keep-alive every 0.2 s
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    return env


def rules(box: Any, output: Path, *args: str, credentials: list[dict] | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "scrapy", "stream", "rules", *args], cwd=ROOT,
                          env=env_for(box, output, credentials), capture_output=True, text=True, timeout=60)
    if args[0] == "add" and done.returncode == 0:
        # the sandbox builds the world's indexes posts need once rules exist (seconds on a busy machine):
        # the timing of what follows is the stream's, not that one-time build's
        wait_for(lambda: box.get("/_sandbox/stream")["ready"], "the sandbox's indexes")
    return done


def start_stream(box: Any, output: Path, *, credentials: list[dict] | None = None, level: str = "INFO",
                 jobdir: Path | None = None, redis_url: str | None = None, **args: Any) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "scrapy", "crawl", "stream", "-L", level] + (["-s", f"JOBDIR={jobdir}"] if jobdir else [])
    for name, value in args.items():
        cmd += ["-a", f"{name}={value}"]
    return subprocess.Popen(cmd, cwd=ROOT, env=env_for(box, output, credentials, redis_url), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def at_world_start(box: Any) -> float:
    """Put the logical clock one second after the world's creation; returns that creation time."""
    started = box.get("/_sandbox/stream")["started"]
    clock = box.get("/_sandbox/clock")
    box.post("/_sandbox/clock", {"offset": clock["offset"] - (clock["now"] - started) + 1.0})
    return started


def wait_for(predicate: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def connection(box: Any) -> dict[str, Any] | None:
    return box.get("/_sandbox/stream")["connections"].get("demo-app-1")


def stream_lines(output: Path) -> list[dict[str, Any]]:
    folder = output / "stream"
    return [json.loads(line) for p in sorted(folder.glob("*.jsonl")) for line in p.read_bytes().splitlines()]


def truth(box: Any, since: float, until: float) -> dict[str, Any]:
    return box.get(f"/_sandbox/truth/stream?app=demo-app-1&since={since}&until={until}")


def finish(proc: subprocess.Popen, timeout: float = 90) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"stream did not end: {err[-3000:]}") from None
    return proc.returncode, out, err


def advance_through_the_hour(box: Any, proc: subprocess.Popen, steps: int = 36) -> None:
    """Move the clock an hour in steps of 100 s; after each, wait until the stream has sent everything due
    (across the drops and stalls it meets), or until it has ended. Real time never jumps: steps shorter than the 5 minutes of backfill
    keep a reconnect's backfill covering what a drop cut off."""
    for _ in range(steps):
        now = box.post("/_sandbox/clock", {"advance": HOUR / steps})["now"]
        wait_for(lambda: (c := connection(box)) is not None and c["through"] >= now or proc.poll() is not None,
                 "the stream to catch up")
        if proc.poll() is not None:
            return  # it has written every post it was asked for (max_tweets)


def test_stream_with_drops_and_a_stall_writes_every_matching_post_once(box: Any, tmp_path: Path) -> None:
    started = at_world_start(box)
    assert rules(box, tmp_path, "add", RULE, "--tag", "romance").returncode == 0
    expected = truth(box, started + 1.0, started + 1.0 + HOUR)
    assert len(expected["ids"]) > 40  # enough posts for four faults, 8 posts apart
    box.post("/_sandbox/stream/faults", {"plan": ["drop", "drop", "stall", "drop"], "every": 8, "stall_seconds": 4})

    proc = start_stream(box, tmp_path, max_tweets=len(expected["ids"]), duration=60, backfill_minutes=5)
    first = wait_for(lambda: connection(box), "the stream to connect")
    assert truth(box, started + 1.0, first["connected_at"])["ids"] == []  # nothing was due before it connected
    advance_through_the_hour(box, proc)
    code, _, err = finish(proc)
    assert code == 0, err[-3000:]

    lines = stream_lines(tmp_path)
    ids = [line["data"]["id"] for line in lines]
    assert len(ids) == len(set(ids))  # each post once
    assert sorted(ids) == sorted(expected["ids"])  # every matching post: the sandbox's truth
    for line in lines:
        assert [r["id"] for r in line["matching_rules"]] == expected["matching_rules"][line["data"]["id"]]
        assert line["matching_rules"][0]["tag"] == "romance"
        prov = line["__tweetform"]
        assert prov["endpoint"] == "/2/tweets/search/stream" and prov["credential"] == "demo-app-1"
        assert prov["key"] == line["data"]["created_at"][:10]  # the bucket key: the post's UTC day
    status = box.get("/_sandbox/stream")
    assert status["faults"]["injected"] == {"drop": 3, "stall": 1} and status["faults"]["plan"] == []
    # the first connection and one after each fault (more if a busy machine kept the sandbox silent for 2 s)
    reconnects = status["connects"]["demo-app-1"] - 1
    assert reconnects >= 4 and err.count("asking for 5 minute(s) of backfill") == reconnects
    cut = err.count("stream connection lost (") + err.count("stream closed by the server")  # however the cut shows
    assert cut == 3 and err.count("stream silent for 2.0 s") >= 1
    # what the stream cost: the sandbox billed each delivered post once (backfill sent some again), as tweetform counted
    bill = box.get("/_sandbox/billing")["apps"]["demo-app-1"]
    # Post reads: the matching posts, and the posts they reply to, quote or retweet (includes.tweets)
    included = {t["id"] for line in lines for t in line.get("includes", {}).get("tweets", [])}
    assert bill["resources"]["post"] == len(set(expected["ids"]) | included)
    manifest = json.loads(next((tmp_path / "_jobs").glob("stream-*.json")).read_text())
    assert manifest["spent_usd"] == pytest.approx(bill["usd"])


def test_second_stream_of_the_app_says_so_and_exits_2(box: Any, tmp_path: Path) -> None:
    at_world_start(box)
    assert rules(box, tmp_path, "add", RULE).returncode == 0
    first = start_stream(box, tmp_path / "a", duration=90)
    try:
        wait_for(lambda: connection(box), "the first stream to connect")
        code, _, err = finish(start_stream(box, tmp_path / "b", duration=90))
        assert code == 2
        assert err.strip().splitlines()[-1] == (
            "tweetform: another stream is already connected for the app of credential 'demo-app-1' (the API allows one "
            "connection per app): stop it first, or use credential=ALIAS of another app")
        assert connection(box) is not None  # the first one goes on
    finally:
        first.send_signal(signal.SIGINT)
        finish(first)
    assert box.get("/_sandbox/stream")["connects"] == {"demo-app-1": 1}


def test_duration_ends_the_stream_with_exit_0(box: Any, tmp_path: Path) -> None:
    at_world_start(box)
    assert rules(box, tmp_path, "add", RULE).returncode == 0
    code, _, err = finish(start_stream(box, tmp_path, duration=2))
    assert code == 0, err[-3000:]
    # it read across keep-alives (one each 0.2 s) for two seconds, on one connection
    summary = next(line for line in err.splitlines() if "stream: 0 posts written in" in line)
    assert "in 1 connection(s)" in summary and int(summary.split(", ")[-1].split()[0]) >= 3


def test_budget_counts_each_delivered_post(box: Any, tmp_path: Path) -> None:
    started = at_world_start(box)
    assert rules(box, tmp_path, "add", RULE).returncode == 0
    proc = start_stream(box, tmp_path, budget="0.10", duration=120)
    wait_for(lambda: connection(box), "the stream to connect")
    advance_until_stopped(box, proc)
    code, _, err = finish(proc)
    assert code == 7, err[-3000:]  # budget_exhausted
    lines = stream_lines(tmp_path)
    manifest = json.loads(next((tmp_path / "_jobs").glob("stream-*.json")).read_text())
    # the price of what it wrote, by the billing rule: each post $0.005 (those it replies to, quotes or
    # retweets too: includes.tweets), each distinct author in includes $0.010
    posts, included, users = written_ids(lines)
    assert manifest["spent_usd"] == pytest.approx(0.005 * len(posts | included) + 0.010 * len(users))
    assert manifest["stopped_by"] == "budget" and 0.05 < manifest["spent_usd"] <= 0.10  # less than one more post's worth left
    expected = set(truth(box, started + 1.0, started + 1.0 + HOUR)["ids"])
    assert posts and posts <= expected
    assert box.get("/_sandbox/billing")["apps"]["demo-app-1"]["resources"]["post"] >= len(posts)


def test_a_billed_ids_answer_redis_lost_neither_ends_the_stream_nor_miscounts(box: Any, redis_server: Any, redis_url: str,
                                                                              tmp_path: Path) -> None:
    """With REDIS_URL, a post's billed-ids call (cost_seen) whose answer the link to Redis lost (tests/cutting_proxy.py:
    the call ran, its answer never came back) is sent again and the post counted at the most its ids may cost, as a
    crawl's pages are (SharedCostLedger): the stream goes on to its budget and spends exactly what it wrote, with one
    line about Redis. Before, the ConnectionError (no redis-py retry since 6fa7767) ended the stream."""
    started = at_world_start(box)
    assert rules(box, tmp_path, "add", RULE).returncode == 0
    proxy = CuttingProxy(redis_server.port, scripts.load(redis.Redis(), "cost_seen").sha)
    try:
        proc = start_stream(box, tmp_path, budget="0.10", duration=120, redis_url=proxy.url)
        wait_for(lambda: connection(box), "the stream to connect")
        advance_until_stopped(box, proc)
        code, _, err = finish(proc)
        assert proxy.cut(0), "the proxy never cut the billed-ids call"
    finally:
        proxy.stop()
    assert code == 7, err[-3000:]  # budget_exhausted: it went on after the lost answer
    lines = stream_lines(tmp_path)
    posts, included, users = written_ids(lines)
    manifest = json.loads(next((tmp_path / "_jobs").glob("stream-*.json")).read_text())
    assert len(posts) > 1 and posts <= set(truth(box, started + 1.0, started + 1.0 + HOUR)["ids"])
    with redis.Redis.from_url(redis_url) as client:  # the job's spend as scrapy status reads it
        spent = spend_of(client, manifest["job"])["spent_usd"]
    assert spent == pytest.approx(0.005 * len(posts | included) + 0.010 * len(users))  # the lost answer's post once
    assert manifest["state"] == "budget_exhausted" and 0.05 < spent <= 0.10
    said = [line for line in err.splitlines() if "Redis did not answer which resource ids are billed" in line]
    assert len(said) == 1, err[-3000:]


def test_a_budget_below_one_post_writes_nothing(box: Any, tmp_path: Path) -> None:
    """A budget that cannot pay for one post ($0.05 at most): stopped before connecting, nothing written or
    spent, exit 7 (it wrote one post and spent 15 times the budget before)."""
    at_world_start(box)
    assert rules(box, tmp_path, "add", RULE).returncode == 0
    proc = start_stream(box, tmp_path, budget="0.001", duration=20, level="WARNING")
    wait_for(lambda: proc.poll() is not None or connection(box), "the stream to stop or connect")
    if proc.poll() is None:  # connected: posts come (a stream that should have stopped would write them)
        box.post("/_sandbox/clock", {"advance": HOUR})
    code, _, err = finish(proc)
    assert code == 7, err[-3000:]  # budget_exhausted
    assert not (tmp_path / "stream").exists() or stream_lines(tmp_path) == []
    manifest = json.loads(next((tmp_path / "_jobs").glob("stream-*.json")).read_text())
    assert manifest["stopped_by"] == "budget" and manifest.get("spent_usd", 0) <= 0.001
    assert box.get("/_sandbox/stream")["connects"].get("demo-app-1") is None  # never connected: nothing billed
    assert "demo-app-1" not in box.get("/_sandbox/billing")["apps"]
    errors = [line for line in err.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "stopped at its budget: spent $0.00 of $0.001" in errors[0], err[-3000:]


def test_rules_add_list_delete_with_the_apis_refusals(box: Any, tmp_path: Path) -> None:
    added = rules(box, tmp_path, "add", "climate data", "--tag", "climate")
    assert added.returncode == 0 and added.stdout.startswith("added ")
    rule_id = added.stdout.split()[1]
    bad = rules(box, tmp_path, "add", "(climate")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [
        "tweetform: rule '(climate' refused: UnprocessableEntity (unbalanced parentheses in search query: '(climate')"]
    dup = rules(box, tmp_path, "add", "climate data")
    assert dup.returncode == 2
    assert dup.stderr.strip() == f"tweetform: rule 'climate data' refused: DuplicateRule (the app has it already, id {rule_id})"
    dry = rules(box, tmp_path, "add", "lang:ja", "--dry-run")
    assert dry.returncode == 0 and dry.stdout.strip() == "valid (dry run, not added): lang:ja"
    assert rules(box, tmp_path, "add", "#data OR lang:de").returncode == 0
    listed = rules(box, tmp_path, "list")
    assert listed.returncode == 0
    assert listed.stdout.splitlines()[0] == f"{rule_id}  climate data  (tag: climate)"
    assert [line.split("  ")[1] for line in listed.stdout.splitlines()] == ["climate data", "#data OR lang:de"]
    # the other app has none: rules are per app (credential=ALIAS)
    other = rules(box, tmp_path, "list", "--credential", "demo-app-2", credentials=demo_credentials("demo-app-1", "demo-app-2"))
    assert other.stdout.strip() == "no rules (app of credential demo-app-2)"
    user_only = rules(box, tmp_path, "list", "--credential", "demo-user-1")
    assert user_only.returncode == 2 and "user-context credential" in user_only.stderr
    assert rules(box, tmp_path, "delete", rule_id).stdout.strip() == "deleted 1 rule(s)"
    missing = rules(box, tmp_path, "delete", rule_id)
    assert missing.returncode == 2 and f"rule '{rule_id}' refused: Not Found Error" in missing.stderr
    assert rules(box, tmp_path, "delete", "--all").stdout.strip() == "deleted 1 rule(s)"
    assert rules(box, tmp_path, "list").stdout.strip() == "no rules (app of credential demo-app-1)"


def test_no_secret_in_logs_or_output(box: Any, tmp_path: Path) -> None:
    """The bearer token is fetched (app key and secret only) and used by both commands; neither prints it."""
    app = demo_credentials("demo-app-1")[0]
    fetched = [{"alias": "demo-app-1", "app_key": app["app_key"], "app_secret": app["app_secret"]}]
    at_world_start(box)
    added = rules(box, tmp_path, "add", RULE, credentials=fetched)
    assert added.returncode == 0
    proc = start_stream(box, tmp_path, credentials=fetched, level="DEBUG", max_tweets=3, duration=60)
    wait_for(lambda: connection(box), "the stream to connect")
    box.post("/_sandbox/clock", {"advance": HOUR})
    code, out, err = finish(proc)
    assert code == 0, err[-3000:]
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert len(stream_lines(tmp_path)) == 3, [l for l in err.splitlines() if "tweetform" in l]
    for secret in (app["bearer_token"], app["app_secret"]):
        for text in (added.stdout, added.stderr, out, err, written.decode("latin-1")):  # the job's queue database is binary
            assert secret not in text


def test_backoff_follows_the_apis_reconnect_rules() -> None:
    """handling-disconnections: network errors +250 ms to 16 s, HTTP errors 5 s doubling to 320 s, 429s 60 s doubling;
    a line received starts every count again."""
    from tweetform.stream.client import Backoff

    b = Backoff()
    assert [b.after("network") for _ in range(3)] == [0.25, 0.5, 0.75]
    assert [b.after("http") for _ in range(8)] == [5, 10, 20, 40, 80, 160, 320, 320]
    assert [b.after("rate") for _ in range(3)] == [60, 120, 240]
    for _ in range(100):
        last = b.after("network")
    assert last == 16.0
    b.reset()
    assert (b.after("network"), b.after("http"), b.after("rate")) == (0.25, 5, 60)


def test_a_refused_stream_exits_bad_input_not_done() -> None:
    """A crawl that ended for bad input (here: another stream holds the app's connection) is not 'done'."""
    from types import SimpleNamespace

    from tweetform import exitcodes

    crawler = SimpleNamespace(stats=SimpleNamespace(get_stats=lambda: {"finish_reason": "stream_connection_limit"}))
    assert exitcodes.for_crawlers([crawler]) == exitcodes.BAD_INPUT


def test_push_refuses_the_stream(box: Any, tmp_path: Path) -> None:
    """The stream is one process's connection: a job for Redis workers would never run; one line, exit 2."""
    env = env_for(box, tmp_path)
    env["REDIS_URL"] = "redis://127.0.0.1:9/0"  # never reached: refused before
    done = subprocess.run([sys.executable, "-m", "scrapy", "push", "stream"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == ("tweetform: stream holds one connection in one process and takes no jobs from Redis: "
                                   "run scrapy crawl stream")


def test_rules_with_no_api_or_a_rejected_credential_say_so_in_one_line(box: Any, tmp_path: Path) -> None:
    from tweetform.testing.servers import free_port

    env = env_for(box, tmp_path)
    env["TWEETFORM_API_BASE"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    down = subprocess.run([sys.executable, "-m", "scrapy", "stream", "rules", "list"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert down.returncode == 5 and down.stderr.strip().splitlines() == [
        f"tweetform: the API at {env['TWEETFORM_API_BASE']} could not be reached (ConnectionError)"]
    box.post("/_sandbox/revoke/demo-app-1")
    try:
        rejected = rules(box, tmp_path, "list")
    finally:
        box.post("/_sandbox/restore/demo-app-1")
    assert rejected.returncode == 4
    assert rejected.stderr.strip().startswith("tweetform: the API rejected credential 'demo-app-1' (HTTP 40")


def test_a_resumed_job_backfills_the_time_it_was_stopped(box: Any, tmp_path: Path) -> None:
    """Stopped, then run again with the same JOBDIR: its first connection asks for backfill, so the posts made
    while no stream was connected (under 5 minutes) are collected, and those written before are not written again."""
    started = at_world_start(box)
    assert rules(box, tmp_path, "add", RULE).returncode == 0

    def run(until: float) -> tuple[str, float]:
        """One ``scrapy crawl stream -s JOBDIR=…`` while the clock moves to ``until``; its log and the last time moved to."""
        proc = subprocess.Popen([sys.executable, "-m", "scrapy", "crawl", "stream", "-L", "INFO", "-a", "duration=8",
                                 "-s", f"JOBDIR={tmp_path / 'job'}"], cwd=ROOT, env=env_for(box, tmp_path),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: connection(box) is not None, "the stream to connect")
        now = box.get("/_sandbox/clock")["now"]
        while now < until:
            now = box.post("/_sandbox/clock", {"advance": 100})["now"]
            wait_for(lambda: (c := connection(box)) is not None and c["through"] >= now, "the stream to catch up")
        code, _, err = finish(proc)
        assert code == 0, err[-3000:]
        return err, now

    _, stopped = run(started + 900)
    resumed_at = box.post("/_sandbox/clock", {"advance": 240})["now"]  # four minutes with no stream connected
    gap = truth(box, stopped, resumed_at)["ids"]
    err, end = run(started + 1800)
    connected = [line for line in err.splitlines() if "stream connected" in line]
    assert connected and connected[0].endswith("asking for 5 minute(s) of backfill")  # its first connection too
    lines = stream_lines(tmp_path)
    ids = [line["data"]["id"] for line in lines]
    assert len(ids) == len(set(ids))  # backfill sent posts of the first run again: none written twice
    assert gap and set(gap) <= set(ids)  # what was posted while nothing was connected
    assert {line["__tweetform"]["job"] for line in lines} == {lines[0]["__tweetform"]["job"]}  # one job, two runs
    expected = truth(box, started + 1.0, end)["ids"]
    assert set(expected) <= set(ids)
    extra = [line["data"]["created_at"] for line in lines if line["data"]["id"] not in set(expected)]
    assert all(created > _iso(box, end) for created in extra)  # only posts made after the clock's last move


def _iso(box: Any, logical: float) -> str:
    """The world's time (as created_at shows it) at a logical Unix time of the sandbox's clock."""
    from datetime import timedelta, timezone

    from tweetform.sandbox.world.common import WORLD_NOW

    started = box.get("/_sandbox/stream")["started"]
    world = WORLD_NOW + timedelta(seconds=logical - started)
    return world.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_plan_says_what_a_stream_may_cost(box: Any, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "scrapy", "plan", "stream", "-a", "max_tweets=1000", "-a", "budget=2"],
                          cwd=ROOT, env=env_for(box, tmp_path), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert done.stdout.strip() == (
        "the filtered stream requests nothing ahead: it costs what the app's rules match as it runs, $0.005 a post "
        "delivered plus its includes (at most $0.05 a post; each resource once per app and UTC day), at most 1,000 "
        "posts ($50.00 at most); with budget $2 it stops when less than $0.05 is left")


def test_max_tweets_bounds_the_job_across_a_resume(box: Any, tmp_path: Path) -> None:
    """A JOBDIR stream with max_tweets=N, interrupted (SIGINT) after k < N posts and run again, ends with exactly N
    posts for the job: the posts its first run wrote count, those backfill sends again do not (each run could write
    N before)."""
    import sqlite3

    started = at_world_start(box)
    assert rules(box, tmp_path, "add", RULE).returncode == 0
    # the first moment (in steps of 100 s) by which at least 3 matching posts are due: the first run stops there
    step, stop_at = 100.0, started + 1.0
    while len(truth(box, started + 1.0, stop_at)["ids"]) < 3:
        stop_at += step
    k = len(truth(box, started + 1.0, stop_at)["ids"])
    n = k + 4
    assert len(truth(box, started + 1.0, started + 1.0 + HOUR)["ids"]) > 2 * n  # enough for a run to overshoot
    jobdir = tmp_path / "job"

    def counted() -> int | None:
        """The job's count of posts in its JOBDIR (None: no such counter), read to interrupt only once it is kept."""
        with sqlite3.connect(jobdir / "tweetform.sqlite") as db:
            row = db.execute("SELECT n FROM counters WHERE name = 'stream_posts'").fetchone()
        return row[0] if row else None

    first = start_stream(box, tmp_path, max_tweets=n, duration=90, jobdir=jobdir)
    wait_for(lambda: connection(box), "the stream to connect")
    now = box.get("/_sandbox/clock")["now"]
    while now < stop_at:
        now = box.post("/_sandbox/clock", {"advance": step})["now"]
        wait_for(lambda: (c := connection(box)) is not None and c["through"] >= now, "the stream to catch up")
    wait_for(lambda: len(stream_lines(tmp_path)) == k and counted() in (k, None), f"{k} posts written and counted")
    first.send_signal(signal.SIGINT)
    code, _, err = finish(first)
    assert code == 8, err[-3000:]  # interrupted
    assert len(stream_lines(tmp_path)) == k < n

    box.post("/_sandbox/clock", {"advance": 240})  # four minutes stopped: backfill sends the last minute's posts again
    second = start_stream(box, tmp_path, max_tweets=n, duration=90, jobdir=jobdir)
    advance_through_the_hour(box, second)
    code, _, err = finish(second)
    assert code == 0, err[-3000:]
    ids = [line["data"]["id"] for line in stream_lines(tmp_path)]
    assert len(ids) == len(set(ids)) == n  # the job's N posts, each once
    assert {line["__tweetform"]["job"] for line in stream_lines(tmp_path)} == {stream_lines(tmp_path)[0]["__tweetform"]["job"]}
    assert set(ids) <= set(truth(box, started + 1.0, box.get("/_sandbox/clock")["now"])["ids"])
