"""Issue 10 feature 8: Redis bytes per seen user, the compact claims next to the old single hash.

Starts its own ``redis-server`` (loopback, free port, no persistence) and pushes ``--ids``
distinct user ids through each layout's claim script in pages of 5,000 (one call per page,
as the network spiders do), one claimer per page:

* **compact** — ``RedisJobStore.claim_users`` today (``tweetform/state/redis/seen.py``:
  small listpack hashes, 32-bit claimer tags);
* **old** — the layout before it: one HASH ``tweetform:job:<job>:expanded`` user id ->
  12-hex-digit digest of the claimer (its Lua script, copied below);
* **old-url** — the same hash as first written, the claimer's page URL as the value (what
  issue 10's "~245 bytes per seen user" was measured on).

Per layout and id kind: ``INFO memory used_memory`` after minus before ÷ distinct ids, and
Σ ``MEMORY USAGE`` of the layout's keys ÷ ids; the buckets' encodings; Redis CPU µs per id
(``INFO cpu``) claiming them, then meeting them all again on other pages (lookups, all refused); this
process's CPU µs per id claiming them (redis-py sending the ids, reading the answer).
Id kinds: ``twitter`` (half 32-bit ids of old accounts, half 61-bit snowflake ids, random
order) and ``small`` (1..N shuffled, like the sandbox's worlds).

``--crawl`` measures as issue 10 does instead: a real distributed ``friends`` crawl of depth 3
(``scrapy push`` + 2 ``scrapy worker`` processes, a sandbox world of ``--users`` accounts, from a
seed with > 200 friends,
limits raised so quota never waits), Redis ``used_memory`` after the job is done minus before
it was pushed, ÷ the distinct user ids in the job's output (sources and listed accounts). The
old layout's figure for the same job: the job's claimed users are then written again into the
old single hash (same Redis, same ids, its tags), and its used_memory delta replaces the
compact claims' delta (the rest of the job's keys are the same in both layouts). While the job runs,
every 2 s: Σ ``MEMORY USAGE`` of every tweetform key (queued and in-flight requests included) ÷ distinct
users in the output so far, and the peak of that ratio with its key families (target ≤ 32 B).

Usage (repository root)::

    .venv/bin/python bench/seen_memory.py               # 1,000,000 ids of each kind (~1 min)
    .venv/bin/python bench/seen_memory.py --ids 200000
    .venv/bin/python bench/seen_memory.py --crawl [--users 30000] [--seed many_friends]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tweetform.job import JobArgs  # noqa: E402
from tweetform.state.redis import keys, seen  # noqa: E402
from tweetform.state.redis.jobs import RedisJobStore  # noqa: E402
from tweetform.testing.servers import RedisServer, SandboxProcess  # noqa: E402

PAGE = 5000
JOB = "friends-20261201T230000-9f3a"  # as scrapy push names jobs: key names count too

OLD_CLAIM = """
local claimed = {}
for i = 3, #ARGV do
  local owner = redis.call('HGET', KEYS[1], ARGV[i])
  if owner then
    if owner == ARGV[1] then claimed[#claimed + 1] = ARGV[i] end
  elseif ARGV[2] == '' or redis.call('HLEN', KEYS[1]) < tonumber(ARGV[2]) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[1])
    claimed[#claimed + 1] = ARGV[i]
  end
end
return claimed
"""


def ids_of(kind: str, n: int, seed: int = 10) -> list[int]:
    rng = random.Random(seed)
    if kind == "small":
        ids = list(range(1, n + 1))
        rng.shuffle(ids)
        return ids
    old, snowflakes = rng.sample(range(10**5, 2**32), n // 2), rng.sample(range(11 * 10**17, 19 * 10**17), n - n // 2)
    return [u for pair in zip(snowflakes, old) for u in pair] + snowflakes[len(old):]


def cpu(r: redis.Redis) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def measure(r: redis.Redis, layout: str, ids: list[int]) -> dict[str, object]:
    r.flushall()
    time.sleep(0.2)
    before, cpu0, client0 = int(r.info("memory")["used_memory"]), cpu(r), time.process_time()
    if layout == "compact":
        store = RedisJobStore(r)
        job = JobArgs(spider="friends", job=JOB, api="1.1", bucket="friend_ids", user_ids=[12], depth=3)
        for start in range(0, len(ids), PAGE):
            store.claim_users(job, ids[start:start + PAGE], 2, f"https://api.twitter.com/1.1/friends/ids.json?user_id={start}")
        assert store.expanded_count(job) == len(ids)
        found = [keys.expanded(JOB), *seen.bucket_keys(r, JOB)]
    else:
        claim = r.register_script(OLD_CLAIM)
        for start in range(0, len(ids), PAGE):
            url = f"https://api.twitter.com/1.1/friends/ids.json?user_id={start}&count=5000&stringify_ids=true"
            tag = url if layout == "old-url" else hashlib.sha1(url.encode()).hexdigest()[:12]
            claim(keys=[keys.expanded(JOB)], args=[tag, "", *ids[start:start + PAGE]])
        assert r.hlen(keys.expanded(JOB)) == len(ids)
        found = [keys.expanded(JOB)]
    spent, after, client = cpu(r) - cpu0, int(r.info("memory")["used_memory"]), time.process_time() - client0
    pipe = r.pipeline(transaction=False)
    for key in found:
        pipe.memory_usage(key, samples=0)
        pipe.object("encoding", key)
    sizes = pipe.execute()
    cpu1 = cpu(r)  # the same ids met again on other pages: lookups only, every one refused
    for start in range(0, len(ids), PAGE):
        if layout == "compact":
            assert not store.claim_users(job, ids[start:start + PAGE], 3, f"again-{start}")
        else:
            assert not claim(keys=[keys.expanded(JOB)], args=[f"again-{start}", "", *ids[start:start + PAGE]])
    again = cpu(r) - cpu1
    encodings = sorted({e.decode() for e in sizes[1::2][1 if layout == "compact" else 0:]})
    return {"used": (after - before) / len(ids), "keys": sum(sizes[0::2]) / len(ids), "count": len(found),
            "encodings": "/".join(encodings), "cpu_us": spent / len(ids) * 1e6, "again_us": again / len(ids) * 1e6,
            "client_us": client / len(ids) * 1e6}


def replayed_claims_bytes(r: redis.Redis, layout: str, uids: list[int]) -> int:
    """used_memory of ``uids`` claimed again in one layout under another job id (then deleted)."""
    replay = "bench-replay"
    claim = r.register_script(OLD_CLAIM)
    before = int(r.info("memory")["used_memory"])
    for start in range(0, len(uids), PAGE):
        url = f"https://api.twitter.com/2/users/{uids[start]}/following?max_results=1000"
        if layout == "compact":
            seen.SeenUsers(r).claim(replay, uids[start:start + PAGE], url)
        else:
            claim(keys=[keys.expanded(replay)], args=[hashlib.sha1(url.encode()).hexdigest()[:12], "", *uids[start:start + PAGE]])
    used = int(r.info("memory")["used_memory"]) - before
    r.delete(*seen.bucket_keys(r, replay), keys.expanded(replay)) if layout == "compact" else r.delete(keys.expanded(replay))
    return used


def key_family(key: str, job: str) -> str:
    """A key's family for the report: the job id as ``<job>``, bucket numbers, apps and days as ``<…>``."""
    name = key.replace(job, "<job>")
    name = re.sub(r":expanded(:\d+)?$", ":expanded[:<i>]", name)
    name = re.sub(r"^(tweetform:cost:(?:seen|billed)):[^:]+:([^:]+):[^:]+(:\d+)?$", r"\1:<app>:\2:<day>[:<i>]", name)
    return re.sub(r":\d+$", ":<i>", name)


def crawl(users: int, seed_kind: str) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from quota_bench import FOLLOWING, Proc, demo_credentials, push, tf_env, wait_registered

    sys.path.insert(0, str(ROOT / "tests"))
    from crawling import bucket, ids_of, users_written

    box = SandboxProcess("--users", str(users), "--seed", "7", "--window", "900", "--limit", f"{FOLLOWING}={10**9}", cwd=ROOT)
    red = RedisServer()
    workdir = Path(tempfile.mkdtemp(prefix="seen-crawl-"))
    job = "friends-20261201T230000-9f3a"
    try:
        seed = box.get("/_sandbox/examples")[seed_kind][0]
        env = tf_env(box, workdir / "out", demo_credentials(), red.url)
        env["TWEETFORM_EXIT_WHEN_IDLE"] = "1"
        procs = [Proc(["worker", "--spiders", "friends"], env, workdir / f"worker{i}.log") for i in range(2)]
        r = red.client
        wait_registered(r, [p.pid for p in procs])
        time.sleep(1.0)
        before = int(r.info("memory")["used_memory"])
        started = time.time()
        push(env, "friends", "--user-id", str(seed), "--depth", "3", "--job", job)
        samples = []  # while the job runs: (seconds, Σ MEMORY USAGE of every tweetform key, users in the output so far)
        while any(p.proc.poll() is None for p in procs) and time.time() - started < 1800:
            time.sleep(2.0)
            users_now = users_written(workdir / "out" / "friend_ids")
            if users_now:
                sizes_now = {k.decode(): int(r.memory_usage(k, samples=0) or 0) for k in r.scan_iter(match="tweetform:*", count=1000)}
                queued = [k for k in sizes_now if k.startswith(keys.queue("friends", "/"))]
                families: dict[str, int] = {}
                for k, size in sizes_now.items():
                    families[key_family(k, job)] = families.get(key_family(k, job), 0) + size
                samples.append((time.time() - started, sum(sizes_now.values()), users_now,
                                sum(sizes_now[k] for k in queued), int(r.hget(keys.job(job), "queued") or 0), families))
        for p in procs:
            p.proc.wait(60)
            p.stop()
        state = r.hget(keys.job(job), "state")
        time.sleep(0.5)
        after = int(r.info("memory")["used_memory"])
        pages = bucket(workdir / "out", "friend_ids")
        seen_ids = {int(k) for k in pages} | {u for lines in pages.values() for u in ids_of(lines)}
        buckets = seen.bucket_keys(r, job)
        claimed = [int(u) for key in buckets for u in r.hkeys(key)]
        pipe = r.pipeline(transaction=False)
        for key in [keys.expanded(job), *buckets]:
            pipe.memory_usage(key, samples=0)
        compact_keys = sum(pipe.execute())
        sizes: dict[str, int] = {}
        counts: dict[str, int] = {}
        for key in r.scan_iter(match="tweetform:*", count=1000):
            name = key_family(key.decode(), job)
            sizes[name] = sizes.get(name, 0) + int(r.memory_usage(key, samples=0) or 0)
            counts[name] = counts.get(name, 0) + 1
        compact_used = replayed_claims_bytes(r, "compact", claimed)
        old_used = replayed_claims_bytes(r, "old", claimed)
    finally:
        red.stop()
        box.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    n = len(seen_ids)
    print(f"sandbox `{box.command}`; `scrapy push friends --user-id {seed} --depth 3` taken by 2 workers: "
          f"state {state.decode() if state else None}, {time.time() - started:.0f} s, {n:,} distinct users in the output, "
          f"{len(claimed):,} of them claimed (expanded)")
    print("| layout | used_memory after − before, ÷ users in the output | claims replayed: used_memory ÷ claimed users | claims' Σ MEMORY USAGE ÷ claimed |")
    print("|---|---:|---:|---:|")
    print(f"| compact (today) | {(after - before) / n:.1f} | {compact_used / len(claimed):.1f} | {compact_keys / len(claimed):.1f} |")
    print(f"| old single hash | {(after - before - compact_used + old_used) / n:.1f} | {old_used / len(claimed):.1f} | — |")
    print("While the job ran (every 2 s): Σ MEMORY USAGE of every tweetform key (queued and in-flight requests included) ÷ users "
          "in the output so far: " + ", ".join(f"{t:.0f} s: {total / users:.1f} B ({users:,} users; queues {q / users:.1f} B, "
                                             f"{n:,} requests, {q / max(n, 1):.0f} B each)" for t, total, users, q, n, _ in samples))
    if samples:
        t, total, users, _, _, families = max(samples, key=lambda s: s[1] / s[2])
        print(f"While-running peak: {total / users:.1f} B per seen user ({t:.0f} s in, {users:,} users; target ≤ 32), by key family:")
        for name, size in sorted(families.items(), key=lambda kv: -kv[1])[:12]:
            print(f"  {name}: {size / users:.1f}")
    print(f"Σ MEMORY USAGE of the job's keys at the end ÷ users in the output: {sum(sizes.values()) / n:.1f} B (target ≤ 32), by key family:")
    for name, size in sorted(sizes.items(), key=lambda kv: -kv[1])[:12]:
        print(f"  {name} ({counts[name]} keys): {size / n:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--ids", type=int, default=1_000_000, help="distinct user ids per run (default 1,000,000)")
    parser.add_argument("--crawl", action="store_true", help="measure a real distributed depth-3 crawl instead")
    parser.add_argument("--users", type=int, default=30_000, help="--crawl: accounts in the sandbox world")
    parser.add_argument("--seed", default="many_friends", help="--crawl: the seed, a kind of /_sandbox/examples (many_friends, ordinary)")
    opts = parser.parse_args()
    if opts.crawl:
        crawl(opts.users, opts.seed)
        return
    server = RedisServer()
    r = server.client
    try:
        limit = r.config_get("hash-max-listpack-entries")["hash-max-listpack-entries"]
        print(f"redis {r.info('server')['redis_version']}, hash-max-listpack-entries {limit}, {opts.ids:,} ids per run, pages of {PAGE:,}")
        print("| ids | layout | used_memory delta B/id | Σ MEMORY USAGE B/id | keys | encoding | Redis CPU µs/id: claimed | met again | client CPU µs/id |")
        print("|---|---|---:|---:|---:|---|---:|---:|---:|")
        for kind in ("twitter", "small"):
            ids = ids_of(kind, opts.ids)
            for layout in ("compact", "old", "old-url"):
                m = measure(r, layout, ids)
                print(f"| {kind} | {layout} | {m['used']:.1f} | {m['keys']:.1f} | {m['count']:,} | {m['encodings']} | {m['cpu_us']:.1f} | {m['again_us']:.1f} | {m['client_us']:.2f} |")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
