"""One dataset from many hosts: workers in collect mode hand pages to Redis, `scrapy collect` writes them.

Workers and collectors are real `scrapy` processes, each worker with its own
output directory (as on separate hosts); the collector's directory must equal
the sandbox's ground truth and the workers' directories must stay empty.
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
from conftest import ROOT
from crawling import bucket
from test_distributed import (  # noqa: F401  (no_process_left_behind: autouse, kills what a test started)
    WORLD, assert_network_equals_truth, no_process_left_behind, push, scrapy, start_workers, wait_all, worker_env,
)

from tweetform.testing.servers import RedisServer

COLLECT = {"TWEETFORM_COLLECT": "true", "TWEETFORM_COLLECT_LOCK_TTL": "3"}


def collect_env(box: Any, redis_url: str, output: Path, **extra: str) -> dict[str, str]:
    env = worker_env(box, redis_url, output)
    env.update(COLLECT)
    env.update(extra)
    return env


def start_collector(env: dict[str, str], data: Path, *extra: str) -> subprocess.Popen:
    return scrapy(env, "collect", "--data", str(data), *extra)


def finish(proc: subprocess.Popen, timeout: float = 120) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]
    return out


def assert_whole_lines(output: Path) -> None:
    """Every file ends with a newline and every line is one JSON object (no torn or glued line)."""
    files = [p for p in output.rglob("*.jsonl")]
    assert files
    for path in files:
        data = path.read_bytes()
        assert data.endswith(b"\n"), path
        for line in data.splitlines():
            assert isinstance(json.loads(line), dict), path


def assert_nothing_written(*dirs: Path) -> None:
    for d in dirs:
        assert not [p for p in d.rglob("*") if p.is_file()], f"a worker wrote locally in collect mode: {d}"


def waiting(r: redis.Redis, job: str) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in r.hgetall(f"tweetform:job:{job}:pages:waiting").items()}


def test_three_workers_one_collector(sandbox_factory, redis_url: str, tmp_path: Path):
    box = sandbox_factory(*WORLD, "--latency", "0.3")
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    hosts = [tmp_path / f"host{i}" for i in range(3)]
    collected = tmp_path / "collected"
    env = collect_env(box, redis_url, hosts[0])
    # pushed before the workers start: a worker with TWEETFORM_EXIT_WHEN_IDLE exits at its second idle check
    # (about 5 s) with nothing queued, so a push that came later (a slow `scrapy push` under load) found
    # every worker gone, the job running with nothing waiting (KeyError: 'pages')
    push(env, "friends", "--user-id", str(seed), "--depth", "3", "--job", "one")
    workers = [start_workers(collect_env(box, redis_url, d), 1, True, "-s", "CONCURRENT_REQUESTS=2",
                             "-s", "LOG_FILE=/dev/stderr")[0] for d in hosts]  # the stats dump: a LOG_FILE keeps it
    logs = wait_all(workers)  # every request done; the pages wait in Redis for a collector
    r = redis.Redis.from_url(redis_url)
    assert r.hget("tweetform:job:one", "state") == b"running"  # not done before its last page is written
    assert waiting(r, "one")["pages"] > 0
    status = subprocess.run([sys.executable, "-m", "scrapy", "status", "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    shown = next(j for j in json.loads(status.stdout)["jobs"] if j["job"] == "one")["collect_waiting"]
    assert shown == {"pages": waiting(r, "one")["pages"], "bytes": waiting(r, "one")["bytes"]}
    text = subprocess.run([sys.executable, "-m", "scrapy", "status"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60).stdout
    assert f"waiting for scrapy collect: {shown['pages']:,} pages" in text
    out = finish(start_collector(env, collected, "--exit-when-idle"))
    assert r.hget("tweetform:job:one", "state") == b"done"
    assert sum("'tweetform/collect/pages_sent'" in log for log in logs) >= 2  # the job was split across workers
    assert_network_equals_truth(box, collected, seed, 3)
    assert_whole_lines(collected)
    assert_nothing_written(*hosts)
    assert waiting(r, "one")["pages"] == 0 and waiting(r, "one")["bytes"] == 0
    assert r.xlen("tweetform:job:one:pages") == 0  # acknowledged pages leave Redis
    pages = sum(len(p.read_bytes().splitlines()) for p in collected.rglob("*.jsonl"))  # friend_ids and errors
    assert "collected: %d pages written" % pages in out
    manifest = json.loads((collected / "_jobs" / "one.json").read_text())  # beside the data, not on a worker
    errors = sum(len(lines) for lines in bucket(collected, "errors").values())
    assert manifest["state"] == "done" and manifest["spider"] == "friends" and manifest["arguments"]["depth"] == 3
    assert (manifest["pages"], manifest["errors"]) == (pages - errors, errors) and manifest["ended"] >= manifest["started"]


def test_a_one_off_crawl_in_collect_mode_writes_nothing_locally(sandbox, redis_url: str, tmp_path: Path):
    seed = sandbox.get("/_sandbox/examples")["ordinary"][0]
    local, collected = tmp_path / "local", tmp_path / "collected"
    env = collect_env(sandbox, redis_url, local)
    crawl = scrapy(env, "crawl", "friends", "-a", f"user_id={seed}", "-a", "depth=2", "-a", "job=once")
    collector = start_collector(env, collected)
    out = finish(crawl, timeout=180)  # the crawl ends when its requests are done; its pages may still wait in Redis
    assert "tweetform: job once: its pages are handed over to scrapy collect; `scrapy wait once` returns once they are written" in out
    r = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 60
    while r.hget("tweetform:job:once", "state") != b"done" and time.monotonic() < deadline:
        time.sleep(0.05)
    collector.send_signal(signal.SIGTERM)
    finish(collector)
    assert_network_equals_truth(sandbox, collected, seed, 2)
    assert_nothing_written(local)
    assert json.loads((collected / "_jobs" / "once.json").read_text())["state"] == "done"


def test_an_entry_carries_the_line_a_local_crawl_writes():
    """Unit: what a worker puts in the stream gives the collector's writer the same line, byte for byte."""
    from tweetform.collect.stream import entry_for, item_from
    from tweetform.items import PROVENANCE, make_error, make_page
    from tweetform.pipelines.buckets import line_for

    prov = {"job": "j", "bucket": "friend_ids", "key": "12", "page_id": "p1", "url": "http://127.0.0.1/2/users/12/following"}
    raw = b'{"data":[{"id":"99999999999999999999"}],"meta":{"result_count":1}}'
    page = make_page({"data": [{"id": "99999999999999999999"}], "meta": {"result_count": 1}}, raw, dict(prov))
    array = make_page([{"id_str": "1"}], b'[{"id_str":"1"}]', dict(prov))
    error = make_error("protected", "12", 401, None, "Not authorized.", None, dict(prov, bucket="errors", key="j"))
    for item in (page, array, error):
        fields, size = entry_for(item)
        assert size == int(fields["n"]) == sum(len(v) for k, v in fields.items() if k != "n")
        back = item_from({k.encode(): v for k, v in fields.items()})
        assert line_for(back) == line_for(item) and back[PROVENANCE] == item[PROVENANCE]


def pending(r: redis.Redis, job: str) -> int:
    try:
        return int(r.xpending(f"tweetform:job:{job}:pages", "collector")["pending"])
    except redis.ResponseError:
        return 0


def holds_requests(r: redis.Redis, pid: int) -> bool:
    entries = [json.loads(v) for v in r.hvals("tweetform:friends:inflight")]
    return any(f"-{pid}-" in e["w"] for e in entries)


def test_killed_collector_and_worker_lose_nothing(sandbox_factory, redis_url: str, tmp_path: Path):
    box = sandbox_factory(*WORLD, "--latency", "0.5")
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    hosts = [tmp_path / f"host{i}" for i in range(3)]
    collected = tmp_path / "collected"
    r = redis.Redis.from_url(redis_url)
    # a lock that outlives each restart: the new collector must take the killed one's over
    env = collect_env(box, redis_url, hosts[0], TWEETFORM_COLLECT_LOCK_TTL="60")
    push(env, "friends", "--user-id", str(seed), "--depth", "3", "--job", "kill")
    slow = ("-s", "CONCURRENT_REQUESTS=2")
    steady = [start_workers(collect_env(box, redis_url, d), 1, True, *slow, spiders="friends")[0] for d in hosts[:2]]
    victim = start_workers(collect_env(box, redis_url, hosts[2]), 1, False, *slow, spiders="friends")[0]
    mid_batch_kills, outs = 0, []
    for _ in range(20):
        collector = start_collector(env, collected)  # at once: the killed one's lock has not expired
        deadline = time.monotonic() + 30
        while pending(r, "kill") == 0 and time.monotonic() < deadline and collector.poll() is None:
            time.sleep(0.001)
        assert collector.poll() is None, collector.communicate(timeout=60)[0][-2000:]
        collector.send_signal(signal.SIGKILL)  # while it holds pages read and not yet acknowledged
        outs.append(collector.communicate(timeout=60)[0])
        mid_batch_kills += pending(r, "kill") > 0
        if mid_batch_kills >= 2:
            break
    assert mid_batch_kills >= 2
    deadline = time.monotonic() + 30
    while not holds_requests(r, victim.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)  # a worker dies with requests in flight
    victim.communicate(timeout=60)
    box.set_faults(latency=0)  # the rest of the crawl need not be slow
    collector = start_collector(env, collected, "--exit-when-idle")
    logs = wait_all(steady, timeout=240)
    outs.append(finish(collector, timeout=120))
    assert any("took over the lock" in out for out in outs[1:])  # a SIGKILLed collector's lock is taken at once
    assert any("read but not acknowledged" in out for out in outs[1:])  # its pending pages are written
    assert any("put back" in log for log in logs)
    assert_network_equals_truth(box, collected, seed, 3)  # every page once
    assert_whole_lines(collected)
    assert_nothing_written(*hosts)
    assert waiting(r, "kill")["pages"] == 0 and pending(r, "kill") == 0


def test_backpressure_caps_what_waits_in_redis(sandbox_factory, redis_url: str, tmp_path: Path):
    box = sandbox_factory(*WORLD)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    cap = 30_000
    hosts = [tmp_path / f"host{i}" for i in range(2)]
    collected = tmp_path / "collected"
    r = redis.Redis.from_url(redis_url)
    envs = [collect_env(box, redis_url, d, TWEETFORM_COLLECT_MAX_BYTES=str(cap)) for d in hosts]
    push(envs[0], "friends", "--user-id", str(seed), "--depth", "3", "--job", "capped")
    workers = [start_workers(e, 1, True, spiders="friends")[0] for e in envs]
    # no collector yet: the workers fill the stream up to the cap and wait there
    deadline = time.monotonic() + 60
    while waiting(r, "capped").get("bytes", 0) < cap and time.monotonic() < deadline:
        time.sleep(0.05)
    held = waiting(r, "capped")
    assert held["bytes"] >= cap
    time.sleep(1.0)
    assert waiting(r, "capped")["pages"] == held["pages"]  # nothing more goes in while the collector is away
    assert all(w.poll() is None for w in workers)  # waiting, not failed
    collector = start_collector(envs[0], collected, "--exit-when-idle")
    logs = wait_all(workers, timeout=240)
    finish(collector)
    assert_network_equals_truth(box, collected, seed, 3)
    assert_nothing_written(*hosts)
    biggest = max(len(line) for p in collected.rglob("*.jsonl") for line in p.read_bytes().splitlines())
    assert waiting(r, "capped")["peak"] <= cap + biggest  # never more than the cap and one page
    assert any("waiting for scrapy collect" in log for log in logs)


def test_redis_restart_while_collecting_loses_nothing(sandbox_factory, tmp_path: Path):
    server = RedisServer(appendonly=True)
    try:
        box = sandbox_factory(*WORLD, "--latency", "0.3")
        seed = box.get("/_sandbox/examples")["ordinary"][0]
        hosts = [tmp_path / f"host{i}" for i in range(2)]
        collected = tmp_path / "collected"
        env = collect_env(box, server.url, hosts[0])
        push(env, "friends", "--user-id", str(seed), "--depth", "3", "--job", "aof")
        workers = [start_workers(collect_env(box, server.url, d), 1, True, "-s", "CONCURRENT_REQUESTS=2", spiders="friends")[0]
                   for d in hosts]
        collector = start_collector(env, collected)
        r = redis.Redis.from_url(server.url)
        deadline = time.monotonic() + 60
        while waiting(r, "aof").get("peak", 0) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        server.restart(down_for=2.0)  # pages in the stream, in the collector's hands and on their way
        box.set_faults(latency=0)  # the rest of the crawl need not be slow
        logs = wait_all(workers, timeout=240)
        r = redis.Redis.from_url(server.url)
        deadline = time.monotonic() + 60
        while r.hget("tweetform:job:aof", "state") != b"done" and time.monotonic() < deadline:
            time.sleep(0.05)
        collector.send_signal(signal.SIGTERM)
        out = finish(collector)
        assert "Redis is unreachable" in out and "Redis is back" in out
        assert any("unreachable" in log for log in logs)
        assert_network_equals_truth(box, collected, seed, 3)
        assert_whole_lines(collected)
        assert_nothing_written(*hosts)
    finally:
        server.stop()


def test_second_collector_exits_with_one_line(sandbox, redis_url: str, tmp_path: Path):
    env = collect_env(sandbox, redis_url, tmp_path / "w")
    first = start_collector(env, tmp_path / "data")
    r = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 60
    while not r.exists("tweetform:collect:lock") and time.monotonic() < deadline:
        time.sleep(0.05)
    second = subprocess.run([sys.executable, "-m", "scrapy", "collect", "--data", str(tmp_path / "data")], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert second.returncode == 1
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and "another collector is writing this dataset" in lines[0] and f"pid {first.pid}" in lines[0]
    first.send_signal(signal.SIGTERM)
    finish(first)
    assert not r.exists("tweetform:collect:lock")  # released on a clean stop


def test_a_collector_that_loses_its_lock_stops(sandbox, redis_url: str, tmp_path: Path):
    env = collect_env(sandbox, redis_url, tmp_path / "w")  # lock TTL 3 s: refreshed every second
    collector = start_collector(env, tmp_path / "data")
    r = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 60
    while not r.exists("tweetform:collect:lock") and time.monotonic() < deadline:
        time.sleep(0.05)
    r.set("tweetform:collect:lock", json.dumps({"token": "other", "host": "elsewhere", "pid": 1}))  # another took it
    out, _ = collector.communicate(timeout=60)
    assert collector.returncode == 1
    assert out.strip().splitlines()[-1] == ("tweetform: this collector's lock expired and another collector holds it now: "
                                            "stopped writing")
    assert json.loads(r.get("tweetform:collect:lock"))["token"] == "other"  # not released by the loser


def test_a_collector_that_lost_its_lock_writes_no_manifest(redis_url: str, tmp_path: Path):
    """Frozen right after acknowledging a job's last page, a collector wakes to find the job done by its
    successor: the job's manifest is a write like the pages, made only while the lock is this collector's
    (test_a_collector_frozen_past_its_ttl_writes_nothing_late met it: _jobs/frozen.json in the old directory)."""
    from scrapy.settings import Settings

    from tweetform.collect.collector import Collector, LockLost
    from tweetform.state.redis import keys

    settings = Settings()
    settings.setmodule("tweetform.settings")
    r = redis.Redis.from_url(redis_url)
    r.hset(keys.job("late"), mapping={"state": "done", "args": json.dumps({"spider": "friends", "bucket": "friend_ids"})})
    collector = Collector(settings, r, tmp_path / "data")
    collector.lock.acquire()
    try:
        r.set(keys.collect_lock(), json.dumps({"token": "other", "host": "elsewhere", "pid": 1}))  # the successor's
        collector.lock.confirmed_at = float("-inf")  # its last look at the lock is from before the freeze
        with pytest.raises(LockLost):
            collector.record_end("late")
        assert not (tmp_path / "data" / "_jobs" / "late.json").exists()
        r.set(keys.collect_lock(), collector.lock.value)  # held again: the manifest is written
        collector.record_end("late")
        assert json.loads((tmp_path / "data" / "_jobs" / "late.json").read_text())["state"] == "done"
    finally:
        collector.writer.close_spider()
        r.delete(keys.collect_lock())


def test_a_job_whose_last_request_ends_after_its_last_page_is_collected_gets_its_manifest(redis_url: str, tmp_path: Path):
    """The collector writes and acknowledges a job's last page while the worker has not yet acknowledged the
    request that made it (the job is still running then); the worker's acknowledgement makes the job done, and the
    collector, stopped right after (SIGTERM sets its stop), writes the job's manifest. It wrote none before:
    only a page's acknowledgement looked for the job's end (test_a_one_off_crawl_in_collect_mode_writes_nothing_locally
    failed on it once in 16 loaded runs)."""
    from scrapy.settings import Settings

    from tweetform.collect.collector import Collector
    from tweetform.collect.stream import GROUP, entry_for
    from tweetform.items import make_page
    from tweetform.state.redis import keys

    settings = Settings()
    settings.setmodule("tweetform.settings")
    r = redis.Redis.from_url(redis_url)
    args = {"spider": "friends", "bucket": "friend_ids", "user_id": "12", "depth": 1}
    # its request is still in a worker's hands (in flight): the page's acknowledgement does not end the job
    r.hset(keys.job("tail"), mapping={"state": "running", "args": json.dumps(args), "created": time.time(), "inflight": 1})
    r.hset(keys.job_progress("tail"), mapping={"pages": 1})
    prov = {"job": "tail", "bucket": "friend_ids", "key": "12", "page_id": "p1", "url": "http://127.0.0.1/2/users/12/following"}
    fields, size = entry_for(make_page({"data": [{"id": "13"}], "meta": {"result_count": 1}},
                                       b'{"data":[{"id":"13"}],"meta":{"result_count":1}}', prov))
    r.xgroup_create(keys.page_stream("tail"), GROUP, id="0", mkstream=True)
    r.xadd(keys.page_stream("tail"), fields)
    r.hset(keys.pages_waiting("tail"), mapping={"pages": 1, "bytes": size})
    r.sadd(keys.collect_jobs(), "tail")
    collector = Collector(settings, r, tmp_path / "data")
    collector.lock.acquire()
    try:
        collector.refresh_jobs(force=True)
        collector.handle(collector.read())  # the last page: written and acknowledged, the job still running
        manifest = tmp_path / "data" / "_jobs" / "tail.json"
        assert (tmp_path / "data" / "friend_ids" / "12.jsonl").exists() and not manifest.exists()
        r.hset(keys.job("tail"), mapping={"state": "done", "finished_at": time.time()})  # the worker's last ack
        collector.stop.set()  # SIGTERM
        collector._loop()
        assert json.loads(manifest.read_text())["state"] == "done"
    finally:
        collector.writer.close_spider()
        collector.lock.release()


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def union(target: Path, *folders: Path) -> None:
    """The bucket files of several collectors' directories as one, each page once (by page id)."""
    for folder in folders:
        for path in folder.rglob("*.jsonl"):
            out = target / path.relative_to(folder)
            out.parent.mkdir(parents=True, exist_ok=True)
            have = {json.loads(line)["__tweetform"]["page_id"] for line in out.read_bytes().splitlines()} if out.exists() else set()
            with out.open("ab") as fh:
                for line in path.read_bytes().splitlines():
                    if json.loads(line)["__tweetform"]["page_id"] not in have:
                        fh.write(line + b"\n")


def test_a_collector_frozen_past_its_ttl_writes_nothing_late(sandbox_factory, redis_url: str, tmp_path: Path):
    """SIGSTOP a collector (lock TTL 3 s) while pages flow; past its TTL a second collector takes the lock
    and the pages over; SIGCONT: the first, with the batch it held, writes nothing more and acknowledges nothing."""
    box = sandbox_factory(*WORLD, "--latency", "0.3")
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    env = collect_env(box, redis_url, tmp_path / "host0")
    push(env, "friends", "--user-id", str(seed), "--depth", "3", "--job", "frozen")
    workers = [start_workers(collect_env(box, redis_url, tmp_path / f"host{i}"), 1, True, "-s", "CONCURRENT_REQUESTS=4",
                             spiders="friends")[0] for i in range(2)]
    first = start_collector(env, first_dir)
    deadline = time.monotonic() + 60
    while len(list(first_dir.rglob("*.jsonl"))) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    first.send_signal(signal.SIGSTOP)  # pages keep coming: its read hands it a batch it cannot write yet
    time.sleep(0.5)
    before = snapshot(first_dir)
    assert before
    time.sleep(4.0)  # past its 3 s TTL
    second = start_collector(env, second_dir, "--exit-when-idle")
    wait_all(workers, timeout=240)
    finish(second)
    first.send_signal(signal.SIGCONT)
    try:
        out, _ = first.communicate(timeout=30)
    except subprocess.TimeoutExpired:  # it went on collecting (it took the freed lock again)
        first.send_signal(signal.SIGTERM)
        out, _ = first.communicate(timeout=60)
    assert snapshot(first_dir) == before  # not one page of its late batch
    assert first.returncode == 1 and "another collector holds it now: stopped writing" in out.strip().splitlines()[-1]
    union(tmp_path / "both", first_dir, second_dir)
    assert_network_equals_truth(box, tmp_path / "both", seed, 3)  # and nothing lost
    r = redis.Redis.from_url(redis_url)
    assert r.hget("tweetform:job:frozen", "state") == b"done" and waiting(r, "frozen")["pages"] == 0


def test_collect_mode_needs_redis(sandbox, tmp_path: Path):
    env = collect_env(sandbox, "", tmp_path)
    env.pop("REDIS_URL")
    done = subprocess.run([sys.executable, "-m", "scrapy", "crawl", "friends", "-a", "user_id=12"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == "tweetform: TWEETFORM_COLLECT needs REDIS_URL: pages go through Redis to `scrapy collect`"
    assert "Traceback" not in done.stderr
    assert not list(tmp_path.rglob("*.jsonl"))
