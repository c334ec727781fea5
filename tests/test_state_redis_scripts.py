"""Every Lua script of the Redis backend, run on the real Redis of the test session."""

from __future__ import annotations

import json
import re
from typing import Iterator

import pytest
import redis

from tweetform.state.redis import compact, keys, scripts


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()  # not left to the garbage collector (an unclosed socket's ResourceWarning is an error)


def run(r: redis.Redis, name: str, keys_: list[str], args: list) -> object:
    return scripts.load(r, name)(keys=keys_, args=args)


def test_every_script_file_loads_and_is_tested():
    names = [n for n in scripts.names() if n.startswith(("queue_", "job_", "claim_", "quota_"))]  # budget_*: tests/test_cost*
    assert {"quota_common", "job_common"} <= set(names)  # included by the others, not run alone
    assert all("-- include:" not in scripts.source(n) for n in names)
    tested = {part for n in globals() if n.startswith("test_") for part in n[len("test_"):].split("__")[:-1]}
    assert set(names) - {"quota_common", "job_common"} <= tested


def test_no_script_builds_a_key_name_or_reads_json_with_a_pattern():
    """Key names come from keys.py (KEYS, or job_templates() / bucket prefixes in ARGV); a member's job and
    request id are read from its fields, never by matching the request's JSON."""
    from pathlib import Path

    import tweetform.collect

    files = [*scripts.LUA.glob("*.lua"), *(Path(tweetform.collect.__file__).with_name("lua")).glob("*.lua")]
    assert len(files) > 20
    for path in files:
        code = "\n".join(line.split("--", 1)[0] for line in path.read_text().splitlines())  # comments aside
        assert not re.search(r"\.\.\s*['\"]:", code), f"{path.name} builds a key name"  # x .. ':suffix'
        assert "tweetform:" not in code and "{job}" not in code.replace("'{job}'", ""), f"{path.name} names a key"
        assert not re.search(r"match\([^)]*\\?\"\w+\\?\":", code) and not re.search(r"match\([^)]*'\"\w+\":", code), \
            f"{path.name} reads JSON with a pattern"


P = keys.job_templates()
INFLIGHT, DELIVERIES = keys.in_flight("friends"), keys.deliveries("friends")
Q = keys.queue("friends", "/friends/ids")
RUN = "run-1"  # the redis-server run id a pop is given (connection.server_run)


def payload(tag: str, job: str = "j") -> str:
    """A request's JSON, told apart by ``tag`` (the scripts never read it)."""
    return json.dumps({"meta": {"tag": tag, "tweetform_ctx": {"job": job}}}, separators=(",", ":"))


def tag_of(member: bytes) -> str:
    """The tag of a member holding one request ("<job>\t<qid>\t<payload>")."""
    return json.loads(member.split(b"\t", 2)[-1])["meta"]["tag"]


def qid_of(member: bytes) -> str:
    return member.split(b"\t", 2)[1].decode()


def tags_queued(r, queue: str = Q) -> list:
    """Tags of every queued request in order (a member holds one or more, one a line)."""
    return [json.loads(p)["meta"]["tag"] for m in r.zrange(queue, 0, -1) for p in m.split(b"\t", 2)[-1].split(b"\n")]


def request(tag: str, job: str = "j", fp: str | bytes = "", priority: int = 0, old: str = "", lease: str = "",
            packed: str = "", level: str = "") -> list:
    """One request's 12 fields in a queue_push batch (``packed``: a packed payload, deduplicated by ``claim``;
    ``level``: its level's pending counter)."""
    layout = keys.dupefilter("friends", job) if fp else ""
    fp = fp.encode() if isinstance(fp, str) else fp
    return [Q, "/friends/ids", job, priority, packed or payload(tag, job), old, lease, "f" if fp else "", layout,
            compact.bucket_prefix(layout) if layout else "", fp, level]


def claimed(tag: str, uid: int, job: str = "j", priority: int = 0) -> list:
    """A claimed user's first page, packed, deduplicated by the claim."""
    return [Q, "/friends/ids", job, priority, f"~{uid},{tag}", "", "", "c", keys.expanded(job), keys.expanded_buckets(job), str(uid), ""]


def push_batch(r, *requests: list) -> str:
    flags = run(r, "queue_push", [keys.queue_sequence("friends"), INFLIGHT, keys.queue_endpoints("friends"), DELIVERIES],
                [P, 32, 0, *(x for req in requests for x in req)])
    return flags.decode()


def push(r, tag: str, job: str = "j", fp: str = "", priority: int = 0, old: str = "", lease: str = "") -> int:
    return int(push_batch(r, request(tag, job, fp, priority, old, lease)))


def fingerprints(r, job: str = "j") -> set:
    layout = keys.dupefilter("friends", job)
    return {f for key in compact.bucket_keys(r, layout) for f in r.hkeys(key)}


def pop(r, worker: str = "w", lease: str = "L1") -> object:
    got = run(r, "queue_pop", [INFLIGHT, DELIVERIES, keys.queue("friends", "/x"), Q], [worker, lease, P, 1.0, 60, "rid", RUN, "/x", 0, 0, "/friends/ids", 0, 0])
    return None if got[0] is None else got


def ack(r, *pairs: str, level: str = "") -> object:
    """Acknowledge (request id, lease) pairs, each counted back at ``level`` (a pending counter, "" for none)."""
    return run(r, "queue_ack", [INFLIGHT, DELIVERIES], [P, *(x for q, l in zip(pairs[0::2], pairs[1::2]) for x in (q, l, level))])


def counts(r, job: str = "j") -> tuple:
    return tuple(int(x or 0) for x in r.hmget(keys.job(job), "queued", "inflight", "parked"))


def new_job(r, job: str = "j") -> None:
    """A job begun under the redis-server process the pops see (RUN: jobs.py stamps its run id)."""
    r.hset(keys.job(job), mapping={"state": "running", "created": 1, "run": RUN})


def test_queue_push__records_fingerprint_with_the_request_and_refuses_duplicates(r):
    new_job(r)
    assert push(r, "a1", fp="fp1") == 1
    assert push(r, "a2", fp="fp1") == 0
    assert push(r, "a3", fp="fp2", priority=5) == 1
    queued = r.zrange(Q, 0, -1)
    assert [q.split(b"\t", 1)[0] for q in queued] == [b"j", b"j"]
    assert tags_queued(r) == ["a3", "a1"]  # priority first
    assert fingerprints(r) == {b"fp1", b"fp2"}
    assert counts(r) == (2, 0, 0)
    assert r.smembers(keys.queue_endpoints("friends")) == {b"/friends/ids"}  # workers find the queue there


def test_queue_push__a_batch_in_one_call_each_request_once_per_job(r):
    new_job(r)
    new_job(r, "k")
    assert push(r, "a0", fp="fp0") == 1
    flags = push_batch(r, request("a1", fp="fp1"), request("a2", fp="fp0"), request("a3", fp="fp1"), request("a4", job="k", fp="fp1"),
                       request("a5"), request("a6", fp="fp6", old="gone", lease="L"))
    assert flags == "100110"  # new, fp0 seen before, fp1 twice in the batch, another job's fp1 is its own, unfiltered, a lost lease
    assert tags_queued(r) == ["a0", "a1", "a5", "a4"]  # FIFO within a priority (a batch's requests of one job together)
    assert r.zcard(Q) == 3  # a1 and a5 (job j, one priority, one call) share a member
    assert fingerprints(r) == {b"fp0", b"fp1"} and fingerprints(r, "k") == {b"fp1"}
    assert counts(r) == (3, 0, 0) and counts(r, "k") == (1, 0, 0)


def test_queue_push__fingerprints_stay_in_compact_buckets_each_kept_whole(r):
    new_job(r)
    fps = [bytes.fromhex(f"{i:08x}") * 5 for i in range(3000)]  # 20 bytes each, like Scrapy's
    for start in range(0, len(fps), 500):
        assert push_batch(r, *(request(f"q{i}", fp=fps[i]) for i in range(start, start + 500))) == "1" * 500
    layout = keys.dupefilter("friends", "j")
    buckets = compact.bucket_keys(r, layout)
    assert {r.object("encoding", b) for b in buckets} == {b"listpack"} and compact.members(r, layout) == 3000
    assert {f for b in buckets for f in r.hkeys(b)} == set(fps)
    assert sum(r.memory_usage(b, samples=0) for b in buckets) / 3000 < 32  # a SET of hex fingerprints: ~90
    assert push_batch(r, request("x", fp=fps[1234]), request("y", fp=fps[1234][:-1] + b"\xff")) == "01"


def test_queue_push__a_claimed_users_first_page_is_queued_once_by_its_claim_with_no_fingerprint(r):
    """A packed first page is deduplicated by the job's claim of its user (seen_claim.lua): queued once, the claim's
    tag negated in place; a user the job never claimed is refused; no fingerprint is kept for any."""
    from tweetform.state.redis.seen import SeenUsers

    new_job(r)
    users = list(range(10**9, 10**9 + 3000))
    for start in range(0, 3000, 1000):
        SeenUsers(r).claim("j", users[start:start + 1000], f"page-{start}")
    before = sum(r.memory_usage(k, samples=0) for k in r.scan_iter(match=keys.expanded("j") + "*"))
    assert push_batch(r, *(claimed("2", u) for u in users)) == "1" * 3000
    assert push_batch(r, claimed("2", users[7]), claimed("2", users[7] + 10**6), claimed("2", users[8])) == "000"
    assert sum(r.memory_usage(k, samples=0) for k in r.scan_iter(match=keys.expanded("j") + "*")) == before  # same bytes
    assert fingerprints(r) == set() and counts(r) == (3000, 0, 0)
    assert not SeenUsers(r).claim("j", users[:5], "page-0")  # its claimer's re-claim: already queued, not again
    members = r.zrange(Q, 0, -1)
    assert len(members) == 3000 // 64 + 1 and sum(len(m) for m in members) / 3000 < 16  # ~13 bytes a request
    got = [pop(r) for _ in range(3000)]
    assert [m[1].split(b"\t")[2].decode() for m in got] == [f"~{u},2" for u in users]  # in order, one at a time
    assert len({qid_of(m[1]) for m in got}) == 3000 and r.zcard(Q) == 0 and counts(r) == (0, 3000, 0)


def claimed_run(tag: str, uids: list[int], job: str = "j", level: str = "") -> list:
    """A run of claimed users' first pages in one entry (dedupe "C"): payloads one a line, ids comma-separated."""
    return [Q, "/friends/ids", job, 0, "\n".join(f"~{u},{tag}" for u in uids), "", "", "C", keys.expanded(job),
            keys.expanded_buckets(job), ",".join(map(str, uids)), level]


def test_queue_push__a_run_of_claimed_first_pages_in_one_entry_is_flagged_and_queued_per_request(r):
    """A run (11 arguments for many requests) gives one flag per request, in order, and queues each first page once
    by its claim exactly as the same requests one entry each would; a run mixes with other entries in a batch."""
    from tweetform.state.redis.seen import SeenUsers
    from tweetform.state.redis.queue import claim_runs

    new_job(r)
    users = list(range(2 * 10**9, 2 * 10**9 + 600))
    SeenUsers(r).claim("j", users[:500], "page-a")
    assert push_batch(r, claimed("2", users[3])) == "1"
    flags = push_batch(r, claimed_run("2", users[:300], level="pending/2"), request("x1"), claimed("2", users[300]),
                       claimed_run("2", [users[301], users[3], users[550], users[302], users[301]], level="pending/2"))
    assert flags == "111" + "0" + "1" * 296 + "1" + "1" + "1" + "0" + "0" + "1" + "0"  # users[3] queued before; 550 never claimed
    queued = [p for m in r.zrange(Q, 0, -1) for p in m.split(b"\t", 2)[-1].split(b"\n")]
    expect = [users[3], *users[:3], *users[4:300]]
    assert [p.decode() for p in queued if p.startswith(b"~")] == [f"~{u},2" for u in [*expect, users[300], users[301], users[302]]]
    assert counts(r) == (304, 0, 0) and fingerprints(r) == set()  # x1 too
    assert r.hget(keys.job_progress("j"), "pending/2") == b"301"  # each request of a run counted at its level once
    assert not SeenUsers(r).claim("j", users[:303], "page-a")  # each queued: its claimer's re-claim gives nothing
    assert SeenUsers(r).claim("j", users[303:305], "page-a") == users[303:305]  # claimed, not queued yet
    # the worker's side: consecutive first pages of one endpoint, job, priority and layout make a run; others stand alone
    def item(uid: int, mode: str = "c", old: str = "", job: str = "j", priority: int = 0, level: str = "pending/2") -> tuple:
        return ("/friends/ids", job, priority, f"~{uid},2", old, "", mode, keys.expanded(job), keys.expanded_buckets(job),
                str(uid).encode(), level)
    runs = claim_runs([item(1), item(2), item(3, priority=-1), item(4, priority=-1), item(5, mode="f"), item(6),
                       item(7, old="q9"), item(8), item(9, job="k"), item(10, job="k", level="pending/3")])
    assert [[x[3] for x in run] for run in runs] == [["~1,2", "~2,2"], ["~3,2", "~4,2"], ["~5,2"], ["~6,2"], ["~7,2"], ["~8,2"],
                                                     ["~9,2"], ["~10,2"]]


def test_queue_push__seen_claim__a_first_page_claims_its_user_in_its_push_once_per_job(r):
    """Dedupe "k" ("K" a run): a user not claimed is claimed by the push of their first page ("2": queued, new), in
    lhash.lua's layout exactly where seen_claim.lua would put them (the layout grows the same way, n counts them),
    marked queued at once; a user seen_claim claimed (the seeds) is queued and marked as "c" does ("1"); a user
    queued before is refused ("3"); a job whose claims are gone ("0") gets no claim and no layout back."""
    from tweetform.state.redis.seen import SeenUsers, bucket_index

    new_job(r)
    seeds = [10**9 - 1, 10**9 - 2]
    assert SeenUsers(r).claim("j", seeds, "seed") == seeds  # the seeds' claim makes the layout, with its marks
    marks = r.hget(keys.expanded("j"), "marks")
    assert marks and int(marks) > 1.7e15  # its birth, in µs
    users = list(range(10**9, 10**9 + 3000))

    def k(uid: int) -> list:
        return [*claimed("2", uid)[:7], "k", *claimed("2", uid)[8:]]

    def k_run(uids: list[int]) -> list:
        return [*claimed_run("2", uids)[:7], "K", *claimed_run("2", uids)[8:11], "pending/2"]

    assert push_batch(r, k(seeds[0]), k(users[0]), k(users[0])) == "123"
    flags = "".join(push_batch(r, k_run(users[start:start + 500])) for start in range(0, 3000, 500))
    assert flags == "3" + "2" * 2999
    assert push_batch(r, k_run([users[5], seeds[1], users[5] + 10**6]), claimed("2", users[6])) == "3120"
    # a run of mostly claimed users is read first (HGET), its new ones claimed all the same
    late = [*users[10:16], users[5] + 2 * 10**6, users[16], users[5] + 3 * 10**6]
    assert push_batch(r, k_run(late)) == "333333" "2" "3" "2"
    layout = r.hgetall(keys.expanded("j"))
    assert int(layout[b"n"]) == 3005 and layout[b"marks"] == marks
    lvl, split = int(layout[b"lvl"]), int(layout[b"split"])
    assert 2**lvl + split >= 3005 // 32  # grown while claiming (load 32 on this server)
    for uid in [*seeds, *users, *(users[5] + n * 10**6 for n in (1, 2, 3))]:  # each in its bucket, marked queued; seeds keep their claimer's tag
        bucket = f"{keys.expanded_buckets('j')}{bucket_index(uid, lvl, split)}"
        assert r.hget(bucket, uid).startswith(b"-"), uid
    buckets = [k for k in r.scan_iter(match=keys.expanded_buckets("j") + "*")]
    assert {r.object("encoding", b) for b in buckets} == {b"listpack"}
    assert sum(r.memory_usage(b, samples=0) for b in buckets) / 3005 < 20  # "-1", not a claimer's tag: ~16 B a user
    assert counts(r) == (3005, 0, 0) and fingerprints(r) == set()
    assert r.hget(keys.job_progress("j"), "pending/2") == b"3003"  # the runs' queued requests, each at its level once
    assert not SeenUsers(r).claim("j", users[:50], "seed")  # claimed (and queued): nobody claims them again
    queued = [p for m in r.zrange(Q, 0, -1) for p in m.split(b"\t", 2)[-1].split(b"\n")]
    news = [users[5] + n * 10**6 for n in (1, 2, 3)]
    assert sorted(queued) == sorted(f"~{u},2".encode() for u in [*seeds, *users, *news])  # each once
    r.delete(keys.expanded("gone"))
    assert push_batch(r, [*claimed("2", 5, job="gone")[:7], "k", *claimed("2", 5, job="gone")[8:]]) == "0"
    assert not r.exists(keys.expanded("gone")) and not list(r.scan_iter(match=keys.expanded_buckets("gone") + "*"))


def test_queue_pop__reads_the_request_id_from_the_member_not_from_its_json(r):
    new_job(r)
    r.zadd(Q, {"j\tn9\t" + payload("n1"): 1})  # the id the worker put in front is the one used
    assert pop(r)[1] == ("j\tn9\t" + payload("n1")).encode() and r.hexists(INFLIGHT, "n9")
    older = "j\t" + json.dumps({"meta": {"tweetform_qid": "a7", "tweetform_ctx": {"job": "j"}}})  # an older tweetform's member
    r.zadd(Q, {older: 2})
    assert pop(r)[1] == older.encode() and r.hexists(INFLIGHT, "a7")  # its id read by decoding the JSON


def test_queue_pop__moves_the_request_into_in_flight_under_a_lease(r):
    new_job(r)
    push(r, "b1")
    got = pop(r, "w1", "LEASE")
    assert got[0] == b"/friends/ids" and tag_of(got[1]) == "b1" and got[2] == 0  # no lanes: no quota taken
    entry = json.loads(r.hget(INFLIGHT, qid_of(got[1])))
    assert entry["w"] == "w1" and entry["l"] == "LEASE" and entry["q"] == Q and entry["j"] == "j" and entry["d"] == got[1].decode()
    assert r.zcard(Q) == 0 and counts(r) == (0, 1, 0)
    assert pop(r) is None


def test_queue_pop__takes_a_members_requests_one_at_a_time_under_consecutive_ids(r):
    new_job(r)
    assert push_batch(r, request("m1"), request("m2"), request("m3", priority=1)) == "111"
    assert r.zcard(Q) == 2
    got = [pop(r, "w", f"L{i}") for i in range(3)]
    assert [tag_of(g[1]) for g in got] == ["m3", "m1", "m2"]
    assert int(qid_of(got[2][1])) == int(qid_of(got[1][1])) + 1 and counts(r) == (0, 3, 0)
    assert [ack(r, qid_of(g[1]), f"L{i}") for i, g in enumerate(got)] == [1, 1, 1]
    assert r.hget(keys.job("j"), "state") == b"done"


def test_queue_ack__ends_the_job_when_nothing_is_left_and_only_under_its_lease(r):
    new_job(r)
    push(r, "c1")
    push(r, "c2")
    c1, c2 = qid_of(pop(r, "w", "L1")[1]), qid_of(pop(r, "w", "L2")[1])
    assert ack(r, c1, "stale-lease") == 0 and r.hexists(INFLIGHT, c1)  # fenced: a reaped worker's late ack
    assert ack(r, c1, "L1") == 1 and r.hget(keys.job("j"), "state") == b"running"
    assert ack(r, c2, "L2") == 1
    assert r.hget(keys.job("j"), "state") == b"done" and float(r.hget(keys.job("j"), "finished_at")) > 1.7e9
    assert counts(r) == (0, 0, 0)


def test_queue_push__acknowledges_the_finished_requests_it_is_given_only_once_its_requests_are_queued(r):
    """A page's new requests and its acknowledgement go in one step (queue_push.lua acknowledges after queuing): a
    push Redis refuses acknowledges nothing. Sent as two scripts, Redis ran the acknowledgement of a refused push
    (out of memory, the push's first write is denied, the ack's deletes are not): the page left in-flight and its
    job ended done while the page's requests were only in the worker's memory; pushed later, the pop dropped them."""
    new_job(r)
    push(r, "page")
    page = qid_of(pop(r, "w", "L1")[1])
    wrong = keys.dupefilter("friends", "j")
    r.set(wrong, "not a hash")  # Redis refuses the push's first write (as out of memory would)
    batch = [P, 32, 1, page, "L1", "", *request("child", fp="f1")]
    pushed = [keys.queue_sequence("friends"), INFLIGHT, keys.queue_endpoints("friends"), DELIVERIES]
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        run(r, "queue_push", pushed, batch)
    assert r.hexists(INFLIGHT, page) and r.hget(keys.job("j"), "state") == b"running" and counts(r) == (0, 1, 0)
    r.delete(wrong)
    assert run(r, "queue_push", pushed, batch) == b"1"  # sent again: queued, then the page acknowledged
    assert not r.hexists(INFLIGHT, page) and counts(r) == (1, 0, 0) and r.hget(keys.job("j"), "state") == b"running"
    assert tag_of(pop(r, "w", "L2")[1]) == "child"
    assert run(r, "queue_push", pushed, [P, 32, 1, page, "L1", "", *request("child", fp="f1")]) == b"0"  # filtered
    assert counts(r) == (0, 1, 0)  # the acknowledgement ran twice without harm


def pending(r, job: str = "j") -> dict:
    """The job's pending counters per level (queue_push adds, queue_ack takes back)."""
    return {k.decode(): int(v) for k, v in r.hgetall(keys.job_progress(job)).items() if k.startswith(b"pending/")}


def test_queue_push__queue_ack__count_each_levels_requests_until_they_finish(r):
    new_job(r)
    assert push_batch(r, request("a", fp="fa", level="pending/1"), request("b", fp="fb", level="pending/1"),
                      request("c", fp="fc", level="pending/2"), request("a", fp="fa", level="pending/1")) == "1110"
    assert pending(r) == {"pending/1": 2, "pending/2": 1}  # the duplicate was not queued: not counted
    got = [pop(r, "w", f"L{i}") for i in range(3)]
    qids = {tag_of(g[1]): qid_of(g[1]) for g in got}
    assert pending(r) == {"pending/1": 2, "pending/2": 1}  # in flight is pending too
    assert push_batch(r, request("a", old=qids["a"], lease="L0", level="pending/1")) == "1"  # a retry: pending as it was
    assert pending(r) == {"pending/1": 2, "pending/2": 1}
    assert ack(r, qids["b"], "stale", level="pending/1") == 0 and pending(r)["pending/1"] == 2  # not its lease: not done
    assert ack(r, qids["b"], "L1", level="pending/1") == 1 and pending(r) == {"pending/1": 1, "pending/2": 1}
    retried = qid_of(pop(r, "w", "L3")[1])
    assert ack(r, retried, "L3", level="pending/1") == 1 and pending(r) == {"pending/1": 0, "pending/2": 1}
    push_batch(r, request("d", fp="fd", level="pending/2"))
    d = qid_of(pop(r, "w", "L4")[1])
    assert ack(r, qids["c"], "L2", d, "L4", level="pending/2") == 2  # one call: counted back once per level
    assert pending(r) == {"pending/1": 0, "pending/2": 0} and r.hget(keys.job("j"), "state") == b"done"
    new_job(r, "k")
    push_batch(r, request("e", job="k", level="pending/1"))
    e = qid_of(pop(r, "w", "L5")[1])
    r.delete(keys.job("k"), keys.job_progress("k"))  # purged meanwhile
    assert ack(r, e, "L5", level="pending/1") == 1 and not r.exists(keys.job_progress("k"))  # not brought back
    push_batch(r, request("f", job="k", level="pending/1"))
    assert not r.exists(keys.job_progress("k"))


def test_queue_push__a_retry_replaces_its_in_flight_entry_only_under_its_lease(r):
    new_job(r)
    push(r, "e1")
    e1 = qid_of(pop(r, "w", "L1")[1])
    assert push(r, "e2", old=e1, lease="other") == 0  # the lease went to another worker: nothing written
    assert r.hexists(INFLIGHT, e1) and r.zcard(Q) == 0
    assert push(r, "e2", old=e1, lease="L1") == 1
    assert not r.hexists(INFLIGHT, e1) and counts(r) == (1, 0, 0)


def test_queue_pop__parks_a_paused_jobs_requests_in_the_same_step__job_state__resume_puts_them_back(r):
    new_job(r, "p")
    new_job(r, "k")
    assert push_batch(r, request("p1", job="p"), request("p2", job="p")) == "11"  # one member of two requests
    push(r, "p3", job="p")
    push(r, "k1", job="k")
    assert run(r, "job_state", [keys.job("p")], ["paused", "p", P]) == 1
    got = pop(r)
    assert tag_of(got[1]) == "k1"  # p's requests were parked on the way
    assert counts(r, "p") == (0, 0, 3) and r.zcard(keys.parked("p")) == 2
    assert run(r, "job_state", [keys.job("p")], ["running", "p", P]) == 1
    assert counts(r, "p") == (3, 0, 0) and tags_queued(r) == ["p1", "p2", "p3"] and r.zcard(keys.parked("p")) == 0
    assert tag_of(pop(r)[1]) == "p1"  # FIFO order kept


def test_job_state__cancel_drops_parked_and_queued_requests_and_ends_the_job(r):
    new_job(r, "c")
    assert push_batch(r, request("x1", job="c"), request("x2", job="c")) == "11"
    push(r, "x0", job="c")
    run(r, "job_state", [keys.job("c")], ["paused", "c", P])
    pop(r)  # parks x1, x2 and x0
    assert counts(r, "c") == (0, 0, 3)
    assert run(r, "job_state", [keys.job("c")], ["cancelled", "c", P]) == 1
    assert r.hget(keys.job("c"), "state") == b"cancelled" and r.hexists(keys.job("c"), "finished_at")
    assert counts(r, "c") == (0, 0, 0) and r.zcard(keys.parked("c")) == 0
    assert push_batch(r, request("x3", job="c"), request("x4", job="c")) == "11"  # e.g. a late push from a callback in flight
    assert pop(r) is None and counts(r, "c")[0] == 0  # dropped when met, both
    assert run(r, "job_state", [keys.job("nope")], ["paused", "nope", P]) == 0


def test_job_started__the_seeding_hold_keeps_a_job_open(r):
    new_job(r, "s")
    r.sadd(keys.job_starting("s"), "w")
    r.rpush("processing", "msg")
    push(r, "5a1", job="s")
    ack(r, qid_of(pop(r, "w", "L")[1]), "L")
    assert r.hget(keys.job("s"), "state") == b"running"  # its worker is still queuing seeds
    assert run(r, "job_started", [keys.job("s"), "processing"], ["w", "msg", "s", P]) == 1
    assert r.hget(keys.job("s"), "state") == b"done" and r.llen("processing") == 0


def test_queue_reap__gives_back_a_dead_workers_requests_and_dead_letters_poison_ones(r):
    new_job(r)
    prefix, suffix = keys.HEARTBEAT_PARTS
    dead = keys.dead_requests("friends")
    qids = {}
    for tag, worker in (("c1", "dead"), ("c2", "alive")):
        push(r, tag)
        qids[tag] = qid_of(pop(r, worker, "L-" + worker)[1])
    r.set(keys.heartbeat("alive"), "1")
    assert run(r, "queue_reap", [INFLIGHT, dead, DELIVERIES], [prefix, suffix, "", P, 3, 100]) == [1]
    assert set(r.hkeys(INFLIGHT)) == {qids["c2"].encode()} and r.zcard(Q) == 1 and counts(r) == (1, 1, 0)
    assert run(r, "queue_reap", [INFLIGHT, dead, DELIVERIES], [prefix, suffix, "alive", P, 3, 100]) == [1]  # a stopping worker releases its own
    assert r.hlen(INFLIGHT) == 0 and counts(r) == (2, 0, 0)
    for n in (2, 3):  # c1 handed over again and again: its third hand-over dead-letters it
        while True:
            got = pop(r, "dead", "L")
            if tag_of(got[1]) == "c1":
                break
            ack(r, qid_of(got[1]), "L")
        out = run(r, "queue_reap", [INFLIGHT, dead, DELIVERIES], [prefix, suffix, "", P, 3, 100])
    c1 = f"j\t{qids['c1']}\t{payload('c1')}"
    assert out == [1, c1.encode()]  # under its first id each time
    entry = json.loads(r.lindex(dead, 0))
    assert "handed over 3 times" in entry["reason"] and entry["request"] == c1
    assert r.hget(keys.job_progress("j"), "failed") == b"1"  # counted with the dead-lettering: `scrapy wait` sees it at once
    assert counts(r) == (1, 0, 0)  # c2 still queued: the job goes on
    got = pop(r, "w", "L9")
    assert tag_of(got[1]) == "c2" and ack(r, qid_of(got[1]), "L9") == 1
    assert r.hget(keys.job("j"), "state") == b"done"


def handed_over(r, tag: str, job: str = "j") -> str:
    """Queue a request, give it to a worker that dies, reap it: back in its queue with one hand-over counted."""
    prefix, suffix = keys.HEARTBEAT_PARTS
    push(r, tag, job=job)
    qid = qid_of(pop(r, "gone", "L0")[1])
    assert run(r, "queue_reap", [INFLIGHT, keys.dead_requests("friends"), DELIVERIES], [prefix, suffix, "", P, 3, 100]) == [1]
    assert r.hget(DELIVERIES, qid) == b"1"
    return qid


def test_queue_push__queue_ack__a_retried_request_leaves_no_deliveries_entry(r):
    """A request handed over (its worker died), taken again, then retried (the scheduler's retry: pushed again
    under its old id and lease, a new request replacing it) and the retry acked: nothing of it is left in the
    deliveries hash. Before: the push dropped its in-flight entry but not its deliveries entry, which stayed
    for the life of the queue (one per retried request: Redis memory growing on long crawls). The retry's own
    entry (0 hand-overs: its pop says it is no first delivery) goes with its ack."""
    new_job(r)
    old = handed_over(r, "c1")
    got = pop(r, "w", "L1")
    assert qid_of(got[1]) == old and got[3] == 1
    assert push(r, "c1-retry", old=old, lease="L1") == 1
    assert not r.hexists(DELIVERIES, old)
    retry = pop(r, "w", "L2")
    assert tag_of(retry[1]) == "c1-retry" and retry[3] == 1  # marked, with a count of its own
    assert r.hget(DELIVERIES, qid_of(retry[1])) == b"0"
    assert ack(r, qid_of(retry[1]), "L2") == 1
    assert r.hlen(INFLIGHT) == 0 and not r.exists(DELIVERIES) and r.hget(keys.job("j"), "state") == b"done"


def test_queue_push__a_retry_from_get_retry_request_pushed_by_the_worker_queue_leaves_no_deliveries_entry(redis_url: str, r):
    """The same through the code a worker runs: the request taken under its lease (as InFlightQueue.pop_from marks
    it), retried with Scrapy's get_retry_request (as the spiders do), pushed by InFlightQueue, the retry acked."""
    from crawling import unit_crawler
    from scrapy.downloadermiddlewares.retry import get_retry_request

    from tweetform.job import JobArgs
    from tweetform.spiders.network import FriendsSpider
    from tweetform.state.redis.dupefilter import JobDupeFilter
    from tweetform.state.redis.queue import META_LEASE, META_QID, InFlightQueue, split_member

    spider = FriendsSpider.from_crawler(unit_crawler(FriendsSpider, {"REDIS_URL": redis_url, "TWEETFORM_API_BASE": "http://api.test"}))
    queue = InFlightQueue(r, spider, keys.queue("friends", ""))
    queue.bind(JobDupeFilter.from_spider(spider), None, None)
    j = JobArgs(spider="friends", job="rt", api="2", bucket="friend_ids", user_ids=[1], depth=3)
    spider.store.save(j)
    spider.store.claim_users(j, [77], 2, "seed")
    assert queue.push_many([queue.prepare(spider.first_page(j, 77, 2))]) == [True]
    fq = keys.queue("friends", "/2/users/:id/following")
    prefix, suffix = keys.HEARTBEAT_PARTS

    def take(worker: str, lease: str) -> tuple[str, str]:
        got = run(r, "queue_pop", [INFLIGHT, DELIVERIES, fq], [worker, lease, P, 1.0, 60, "rid", RUN, "/2/users/:id/following", 0, 0])
        _, qid, payload = split_member(got[1].decode())
        return qid, payload

    qid, _ = take("gone", "L0")
    run(r, "queue_reap", [INFLIGHT, keys.dead_requests("friends"), DELIVERIES], [prefix, suffix, "", P, 3, 100])
    assert r.hget(DELIVERIES, qid) == b"1"
    qid, payload = take(queue.worker, "L1")
    request = queue.decode("rt", payload)
    request.meta[META_QID], request.meta[META_LEASE] = qid, "L1"
    retry = get_retry_request(request, spider=spider, reason="tweetform_server_error")
    assert retry is not None and retry.dont_filter
    queue.push(retry)
    queue.flush_unsent()
    assert not r.hexists(INFLIGHT, qid) and not r.hexists(DELIVERIES, qid)
    again, _ = take(queue.worker, "L2")
    assert again != qid and ack(r, again, "L2") == 1
    assert r.hlen(INFLIGHT) == 0 and not r.exists(DELIVERIES)


def test_queue_clear__queue_pop__a_dropped_request_leaves_no_deliveries_entry(r):
    """A handed-over request back in its queue that never reaches a worker again: dropped by clear-queue, or
    met by a pop after its job was purged. Neither leaves its deliveries entry behind (before: both did)."""
    from tweetform.state.redis import control

    new_job(r, "a")
    handed_over(r, "a1", job="a")
    assert control.clear_queue(r, "friends") == 1 and not r.exists(DELIVERIES)
    new_job(r, "b")
    handed_over(r, "b1", job="b")
    control.purge_job(r, "b")
    assert pop(r) is None and r.zcard(Q) == 0 and not r.exists(DELIVERIES)


def test_queue_pop__queue_reap__only_a_request_nobody_held_before_is_a_first_delivery(r):
    """The pop's last value: 0 for a request pushed once and taken by nobody before (its page can be written by
    this worker only), 1 once another worker may have held it: handed over from a dead worker (counted), or released
    by a stopping one (marked 0: not a hand-over, never dead-lettered for it). Before: the release left no mark, so
    the next taker of a released request took it for a first delivery."""
    new_job(r)
    prefix, suffix = keys.HEARTBEAT_PARTS
    dead = keys.dead_requests("friends")
    push(r, "first")
    got = pop(r, "alive", "L1")
    assert got[3] == 0
    r.set(keys.heartbeat("alive"), "1")
    assert run(r, "queue_reap", [INFLIGHT, dead, DELIVERIES], [prefix, suffix, "", P, 2, 100]) == [0]  # alive: kept
    assert run(r, "queue_reap", [INFLIGHT, dead, DELIVERIES], [prefix, suffix, "alive", P, 2, 100]) == [1]  # released
    assert r.hget(DELIVERIES, qid_of(got[1])) == b"0"
    again = pop(r, "gone", "L2")
    assert qid_of(again[1]) == qid_of(got[1]) and again[3] == 1
    assert run(r, "queue_reap", [INFLIGHT, dead, DELIVERIES], [prefix, suffix, "", P, 2, 100]) == [1]  # "gone" died
    assert r.hget(DELIVERIES, qid_of(got[1])) == b"1"  # the release did not count as a hand-over
    third = pop(r, "w", "L3")
    assert third[3] == 1 and ack(r, qid_of(third[1]), "L3") == 1 and not r.exists(DELIVERIES)


def test_queue_pop__a_request_of_a_job_begun_under_another_redis_process_is_never_a_first_delivery(r):
    """A job's hash says which redis-server process it began under (its run id, stamped by jobs.py). A pop under
    another one (Redis restarted, or a replica took over: its data may be older than what was answered, a request
    back in its queue though a worker took it, that pop lost) says no request of the job is a first delivery; nor
    when the run is not known (INFO refused: ""), nor for a job an older tweetform began (no run). Before: any
    request without a deliveries entry was a first delivery."""
    new_job(r)
    push(r, "a1")
    push(r, "a2")
    push(r, "a3")
    assert pop(r)[3] == 0  # the same process
    got = run(r, "queue_pop", [INFLIGHT, DELIVERIES, Q], ["w", "L2", P, 1.0, 60, "rid", "run-2", "/friends/ids", 0, 0])
    assert tag_of(got[1]) == "a2" and got[3] == 1  # restarted since the job began
    got = run(r, "queue_pop", [INFLIGHT, DELIVERIES, Q], ["w", "L3", P, 1.0, 60, "rid", "", "/friends/ids", 0, 0])
    assert tag_of(got[1]) == "a3" and got[3] == 1  # not known
    r.hdel(keys.job("j"), "run")
    push(r, "a4")
    assert pop(r, "w", "L4")[3] == 1  # a job of an older tweetform
    assert not r.exists(DELIVERIES)  # nothing stored for it: the answer is the pop's


def test_queue_push__queue_pop__a_retry_is_marked_under_its_new_id_among_new_requests(r):
    """A retry pushed in one batch with new requests of its job lands in the same member, between them: only the
    retry's new id is marked, so only its pop says another worker may have written its page (a callback that yielded
    its page, then met Redis away and asked for it again; a stalled holder's late write). Before: its pop said first
    delivery. A member dropped whole (its job cancelled) takes the marks of all its requests with it."""
    new_job(r)
    push(r, "orig")
    got = pop(r, "w", "L0")
    assert got[3] == 0
    assert push_batch(r, request("n1"), request("retry", old=qid_of(got[1]), lease="L0"), request("n2")) == "111"
    assert r.zcard(Q) == 1  # one member of three requests
    taken = [pop(r, "w", f"L{i}") for i in range(1, 4)]
    assert [(tag_of(t[1]), t[3]) for t in taken] == [("n1", 0), ("retry", 1), ("n2", 0)]
    assert r.hgetall(DELIVERIES) == {qid_of(taken[1][1]).encode(): b"0"}
    for i, t in enumerate(taken, 1):
        assert ack(r, qid_of(t[1]), f"L{i}") == 1
    assert not r.exists(DELIVERIES)
    new_job(r, "c")
    push(r, "c0", job="c")
    got = pop(r, "w", "L5")
    assert push_batch(r, request("c1", job="c"), request("c-retry", job="c", old=qid_of(got[1]), lease="L5")) == "11"
    assert r.hlen(DELIVERIES) == 1
    r.hset(keys.job("c"), "state", "cancelled")
    assert pop(r) is None and r.zcard(Q) == 0 and not r.exists(DELIVERIES)  # dropped: no mark left behind


def test_queue_reap__a_dead_lettered_request_fails_its_level_for_last_complete_level(r):
    """A request dead-lettered (handed over too often) is a page failed for good at its level (failed/<depth>,
    from the packed level or the JSON's ctx), so the job's last complete level stops above it; its errors record
    is written with failure_counted and counts nothing more. Before: only `failed` was counted, and the job,
    once done, said every level complete (3 here)."""
    from tweetform.state.redis.jobs import job_last_complete_level

    new_job(r, "d")
    r.hset(keys.job("d"), "args", json.dumps({"spider": "friends", "job": "d", "api": "1.1", "bucket": "friend_ids", "depth": 3}))
    deep = json.dumps({"meta": {"tweetform_ctx": {"job": "d", "depth": 3}}}, separators=(",", ":"))
    assert push_batch(r, request("p", job="d", packed="~5,2,1", level="pending/2")) + push_batch(r, [Q, "/friends/ids", "d", 0, deep, "", "", "", "", "", b"", "pending/3"]) == "11"
    prefix, suffix = keys.HEARTBEAT_PARTS
    pop(r, "gone", "L1")
    pop(r, "gone", "L2")
    out = run(r, "queue_reap", [INFLIGHT, keys.dead_requests("friends"), DELIVERIES], [prefix, suffix, "", P, 1, 100])
    assert out[0] == 2 and len(out) == 3 and r.hget(keys.job("d"), "state") == b"done"
    assert {k: int(v) for k, v in r.hgetall(keys.job_progress("d")).items()} == {b"failed": 2, b"failed/2": 1, b"failed/3": 1,
                                                                               b"pending/2": 1, b"pending/3": 1}  # never acked
    assert job_last_complete_level(r, "d") == 1


def test_queue_clear__drops_every_request_of_a_member_and_its_job_ends_with_them_failed(r):
    """scrapy admin clear-queue (control.clear_queue): a member holding three requests is three requests dropped,
    not one, each a page failed for good at its level, and their job ends (scrapy wait returns) once nothing of
    it is left. Before: the count was of members and the jobs' queued counts stayed, so they never ended."""
    from tweetform.state.redis import control

    new_job(r, "a")
    new_job(r, "b")
    deep = json.dumps({"meta": {"tweetform_ctx": {"job": "b", "depth": 3}}}, separators=(",", ":"))
    assert push_batch(r, request("a1", job="a", packed="~5,2"), request("a2", job="a", packed="~6,2,1"),
                      request("a3", job="a", packed="~7,2"), request("a4", job="a", packed="~8,2")) == "1111"
    assert push_batch(r, [Q, "/friends/ids", "b", 0, deep, "", "", "", "", "", b"", ""], request("b2", job="b")) == "11"
    in_flight = pop(r, "w", "L1")  # a's first request is being fetched: a is not over yet
    assert counts(r, "a") == (3, 1, 0) and counts(r, "b") == (2, 0, 0) and r.zcard(Q) == 2
    assert control.clear_queue(r, "friends") == 5 and r.zcard(Q) == 0
    assert counts(r, "a") == (0, 1, 0) and r.hget(keys.job("a"), "state") == b"running"
    assert r.hget(keys.job("b"), "state") == b"done"
    assert {k: int(v) for k, v in r.hgetall(keys.job_progress("a")).items()} == {b"failed": 3, b"failed/2": 3}
    assert {k: int(v) for k, v in r.hgetall(keys.job_progress("b")).items()} == {b"failed": 2, b"failed/3": 1}
    assert ack(r, qid_of(in_flight[1]), "L1") == 1 and r.hget(keys.job("a"), "state") == b"done"


def test_queue_reap__the_dead_letter_list_is_capped(r):
    prefix, suffix = keys.HEARTBEAT_PARTS
    dead = keys.dead_requests("friends")
    for i in range(5):
        push(r, f"f{i}", job="")
        pop(r, "gone", "L")
    run(r, "queue_reap", [INFLIGHT, dead, DELIVERIES], [prefix, suffix, "", P, 1, 3])
    assert r.llen(dead) == 3


def test_queue_reclaim__gives_back_entries_the_worker_does_not_hold(r):
    new_job(r)
    qids = []
    for tag in ("d1", "d2"):
        push(r, tag)
        qids.append(qid_of(pop(r, "w", "L")[1]))
    assert run(r, "queue_reclaim", [INFLIGHT, DELIVERIES], ["w", 60, P]) == 0  # too recent
    assert run(r, "queue_reclaim", [INFLIGHT, DELIVERIES], ["w", -1, P, qids[0]]) == 1  # d1 held, d2 lost
    assert set(r.hkeys(INFLIGHT)) == {qids[0].encode()} and counts(r) == (1, 1, 0) and tags_queued(r) == ["d2"]
    # marked, not as a hand-over: the worker may have seen the pop after all, so its next taker asks whether its page
    # is written (before: no mark, the pop said first delivery)
    assert r.hgetall(DELIVERIES) == {qids[1].encode(): b"0"} and pop(r, "v", "L2")[3] == 1


def lane(name: str = "a:user") -> list[str]:
    h = keys.quota(name, "/friends/ids")
    return [h, h + ":inflight"]


def redis_now(r: redis.Redis) -> float:
    sec, usec = r.time()
    return sec + usec / 1e6


def test_quota_reserve__one_probe_until_the_limit_is_known_then_the_lane_with_quota(r):
    assert run(r, "quota_reserve", lane(), [1.0, 0, 60, "r1"]) == 1
    assert run(r, "quota_reserve", lane(), [1.0, 0, 60, "r2"]) == 0  # one probe at a time
    assert run(r, "quota_reserve", lane() + lane("b:user"), [1.0, 0, 60, "r3"]) == 2


def test_quota_answered__learns_the_window_and_releases(r):
    reset = int(redis_now(r)) + 900
    run(r, "quota_reserve", lane(), [1.0, 0, 60, "r1"])
    assert run(r, "quota_answered", lane(), ["r1", 200, 15, 14, reset]) == 1
    assert r.hmget(lane()[0], "limit", "srem", "reset") == [b"15", b"14", str(reset).encode()]
    assert r.zcard(lane()[1]) == 0
    run(r, "quota_answered", lane(), ["r0", 200, 15, 16, reset])  # an older answer never raises it
    assert r.hget(lane()[0], "srem") == b"14"
    before = redis_now(r)
    assert run(r, "quota_answered", lane(), ["r9", 429, "", "", ""]) == 0
    assert before + 59 < float(r.hget(lane()[0], "blocked")) < redis_now(r) + 61  # a 429 without headers: a minute, in Redis time


def test_quota_available__quota_ready_at__follow_the_window(r):
    reset = int(redis_now(r)) + 900
    run(r, "quota_reserve", lane(), [1.0, 0, 60, "r1"])
    run(r, "quota_answered", lane(), ["r1", 200, 2, 1, reset])
    assert run(r, "quota_available", lane(), [1.0]) == 1
    run(r, "quota_reserve", lane(), [1.0, 0, 60, "r2"])
    assert run(r, "quota_available", lane(), [1.0]) == 0  # the last one is in flight
    run(r, "quota_answered", lane(), ["r2", 200, 2, 0, reset])
    at, now = run(r, "quota_ready_at", lane(), [1.0])
    assert float(at) == reset + 1.0 and abs(float(now) - redis_now(r)) < 5  # reset + margin, and Redis's now
    r.hset(lane()[0], "reset", int(redis_now(r)) - 5)  # the window is over (Redis's clock says so)
    assert run(r, "quota_available", lane(), [1.0]) == 1
    assert run(r, "quota_reserve", lane(), [1.0, 0, 60, "r3"]) == 1
    assert r.hget(lane()[0], "srem") == b"2"


def test_quota_release__cancelled_frees_quota_failed_counts_it(r):
    reset = int(redis_now(r)) + 900
    run(r, "quota_reserve", lane(), [1.0, 0, 60, "r1"])
    run(r, "quota_answered", lane(), ["r1", 200, 5, 4, reset])
    run(r, "quota_reserve", lane(), [1.0, 0, 60, "r2"])
    run(r, "quota_release", lane(), ["r2", "0"])
    assert r.hget(lane()[0], "srem") == b"4" and r.zcard(lane()[1]) == 0
    run(r, "quota_reserve", lane(), [1.0, 0, 60, "r3"])
    run(r, "quota_release", lane(), ["r3", "1"])  # no answer: assume the API counted it
    assert r.hget(lane()[0], "srem") == b"3"


def test_quota_reserve__expired_reservations_stop_holding_quota(r):
    assert run(r, "quota_reserve", lane(), [1.0, 0, 60, "r1"]) == 1
    assert run(r, "quota_reserve", lane(), [1.0, 0, 60, "r2"]) == 0
    r.zadd(lane()[1], {"r1": redis_now(r) - 1})  # r1 (a dead worker's) is past its hold
    assert run(r, "quota_available", lane(), [1.0]) == 1 and r.zcard(lane()[1]) == 1  # counted out, not yet deleted
    assert run(r, "quota_reserve", lane(), [1.0, 0, 60, "r3"]) == 1
    assert r.zrange(lane()[1], 0, -1) == [b"r3"]  # deleted when the lane is used: a dead worker's do not pile up


def test_queue_pop__takes_the_quota_with_the_request_or_leaves_it_queued(r):
    new_job(r)
    push(r, "a1")
    h = keys.quota("u:user", "/friends/ids")
    lanes = [h, h + ":inflight"]
    args = ["w", "L", P, 1.0, 60, "rid-1", RUN, "/friends/ids", 1, 0]
    r.hset(h, mapping={"limit": 15, "reset": int(redis_now(r)) + 900, "srem": 0})  # used up
    assert run(r, "queue_pop", [INFLIGHT, DELIVERIES, Q, *lanes], args) == [None, b"/friends/ids"]  # waiting for quota
    assert r.zcard(Q) == 1 and counts(r) == (1, 0, 0)
    r.hset(h, "srem", 1)
    got = run(r, "queue_pop", [INFLIGHT, DELIVERIES, Q, *lanes], args)
    assert got[0] == b"/friends/ids" and tag_of(got[1]) == "a1" and got[2] == 1
    assert r.zrange(lanes[1], 0, -1) == [b"rid-1"]  # the reservation, in the same step
    assert run(r, "quota_available", lanes, [1.0]) == 0


def test_the_job_message_dead_letter_list_is_capped(r):
    from tweetform.state.redis.jobs import dead_letter

    for i in range(5):
        dead_letter(r, f"bad {i}", "not JSON", cap=3)
    assert [json.loads(x)["message"] for x in r.lrange(keys.dead_letter(), 0, -1)] == ["bad 2", "bad 3", "bad 4"]


class StalledWorkerReturns(redis.Redis):
    """The real Redis, where a stalled worker comes back just before the give-back takes it out of the
    processors index: it indexes itself and takes a message from the inbox (``take_jobs``'s two steps)."""

    def __init__(self, url: str, worker: str) -> None:
        super().__init__(connection_pool=redis.ConnectionPool.from_url(url))
        self.other, self.worker, self.returned = redis.Redis.from_url(url), worker, False

    def execute_command(self, *args, **options):
        processors = keys.jobs_processors("friends")
        if not self.returned and args[0] != "SMEMBERS" and processors in args:
            self.returned = True
            self.other.sadd(processors, self.worker)
            self.other.lmove(keys.jobs_inbox("friends"), keys.jobs_processing("friends", self.worker), "LEFT", "RIGHT")
        return super().execute_command(*args, **options)


def test_job_give_back__a_stalled_worker_coming_back_mid_give_back_keeps_its_new_message_findable(redis_url: str):
    """A worker whose heartbeat lapsed gets its messages given back; if it comes back (indexes itself, takes
    one more message) right before it leaves the processors index, that message is still given back once it
    stays silent. Before: the moves, then SREM, in separate commands — it left the index holding the message,
    which no give-back ever found again."""
    from tweetform.state.redis.node import give_back_dead

    r = StalledWorkerReturns(redis_url, "stalled")
    inbox, processing = keys.jobs_inbox("friends"), keys.jobs_processing("friends", "stalled")
    r.other.sadd(keys.jobs_processors("friends"), "stalled", "alive")
    r.other.set(keys.heartbeat("alive"), 1)
    r.other.rpush(keys.jobs_processing("friends", "alive"), json.dumps({"job": "a"}))
    r.other.rpush(processing, json.dumps({"job": "j1"}))
    r.other.sadd(keys.job_starting("j1"), "stalled")
    r.other.rpush(inbox, json.dumps({"job": "j2"}))
    assert give_back_dead(r, "friends", "me").keys() == {"stalled"} and r.returned
    # nothing stranded: a message in its processing list means it is still indexed
    assert r.other.llen(processing) == 0 or r.other.sismember(keys.jobs_processors("friends"), "stalled")
    assert r.other.smembers(keys.job_starting("j1")) == set()  # its hold on the given-back job ended
    give_back_dead(r.other, "friends", "me")  # still silent: the message it took goes back too
    assert sorted(json.loads(m)["job"] for m in r.other.lrange(inbox, 0, -1)) == ["j1", "j2"]
    assert r.other.llen(processing) == 0 and r.other.smembers(keys.jobs_processors("friends")) == {b"alive"}
    assert r.other.llen(keys.jobs_processing("friends", "alive")) == 1  # a beating worker keeps its messages
    r.other.close()
    r.connection_pool.disconnect()  # a pool passed in is not closed by close()


def test_page_written__queue_push__buckets_created_after_the_job_ended_expire_with_it(r):
    """A job ended (expire_ended gave its sets a TTL), then late pages are written and late requests pushed:
    the buckets they create expire too, with the rest of the job. Before: hash buckets created after the
    sweep had no TTL and lived forever."""
    from tweetform.state.redis import control

    r.hset(keys.job("late"), mapping={"state": "running", "created": 1, "args": json.dumps({"spider": "friends"})})
    r.zadd(keys.jobs(), {"late": 1})
    written, dupes = keys.written("late"), keys.dupefilter("friends", "late")

    def write(pages: range) -> None:
        for i in pages:
            run(r, "page_written", [written, keys.bucket_counts(), keys.job_progress("late")],
                [compact.bucket_prefix(written), 8, i.to_bytes(4, "big") * 2 + b"pp", "b", "pages", 0])
        push_batch(r, *(request(f"q{i}", "late", fp=f"{i * 2654435761 % 2**32:08x}") for i in pages))

    write(range(40))
    r.hset(keys.job("late"), "state", "done")
    assert control.expire_ended(r, 3600) == ["late"]
    before = set(compact.bucket_keys(r, written)) | set(compact.bucket_keys(r, dupes))
    write(range(40, 200))
    after = [written, *compact.bucket_keys(r, written), dupes, *compact.bucket_keys(r, dupes)]
    assert set(after) - before, "the late writes created new buckets"
    ttls = {key: r.ttl(key) for key in after}
    assert all(0 < ttl <= 3600 for ttl in ttls.values()), {k: v for k, v in ttls.items() if v <= 0}


def test_legacy_fold__moves_an_older_set_into_compact_buckets_a_batch_at_a_time_keeping_its_ttl(r):
    """migrate.py's step: hex members become the bytes today's scripts look up, none lost or doubled."""
    old, layout = "tweetform:friends:dupefilter:j", keys.dupefilter("friends", "j")
    fps = [i.to_bytes(2, "big") * 10 for i in range(120)]
    r.sadd(old, *(f.hex() for f in fps))
    r.expire(old, 1000)  # the job had ended
    args = [compact.bucket_prefix(layout), 8, "digest", 50, ""]
    assert run(r, "legacy_fold", [old, layout], args) == [50, 70]
    assert run(r, "legacy_fold", [old, layout], args) == [50, 20]
    assert run(r, "legacy_fold", [old, layout], args) == [20, 0]
    assert not r.exists(old) and run(r, "legacy_fold", [old, layout], args) == [0, 0]
    assert compact.members(r, layout) == 120 and len(compact.bucket_keys(r, layout)) > 4
    assert all(run(r, "page_known", [layout], [compact.bucket_prefix(layout), f]) == 1 for f in fps)
    assert all(0 < r.ttl(k) <= 1000 for k in [layout, *compact.bucket_keys(r, layout)])
    billed, day = keys.cost_seen("app", "user", "2026-12-06"), "tweetform:cost:seen:app:user:2026-12-06:7"
    r.sadd(day, 7, 1031, 2055)
    assert run(r, "legacy_fold", [day, billed], [compact.bucket_prefix(billed), 8, "decimal", 50, 100]) == [3, 0]
    assert run(r, "cost_seen", [billed], [compact.bucket_prefix(billed), 8, 100, 7, 1031, 9]) == 1
    assert 0 < r.ttl(billed) <= 100


def test_page_written__a_page_failed_for_good_counts_at_its_level_once(r):
    """The per-level failed counters (failed/<depth>) last_complete_level reads for a distributed job."""
    written = keys.written("f")
    args = [compact.bucket_prefix(written), 8, b"\x02" * 10, "errors", "errors", 1, "failed/2"]
    for _ in range(2):  # the same page recorded twice (a worker died between writing and acknowledging): once
        run(r, "page_written", [written, keys.bucket_counts(), keys.job_progress("f")], args)
    run(r, "page_written", [written, keys.bucket_counts(), keys.job_progress("f")],
        [compact.bucket_prefix(written), 8, b"\x03" * 10, "friend_ids", "pages", 0, ""])
    assert r.hgetall(keys.job_progress("f")) == {b"errors": b"1", b"failed": b"1", b"failed/2": b"1", b"pages": b"1"}


def test_queue_push__a_split_part_is_queued_only_under_its_requests_lease_which_stays_in_flight_and_is_marked(r):
    """A look-up split near the end of its budget (cost/budget.py): the part queued at once is a new request ("+<qid>":
    split off <qid>), queued only while the caller holds <qid>'s lease (a stalled worker's split of a request handed
    over queues nothing), <qid> staying in flight for its retry (the part sent now) to replace, counted pending at its
    level as a new request; its pop is never a first delivery (a copy of it may be queued: a push sent again)."""
    new_job(r)
    push_batch(r, request("orig", level="pending/1"))
    qid = qid_of(pop(r, "w", "L0")[1])
    assert push_batch(r, request("part", old="+" + qid, lease="other", level="pending/1")) == "0"
    assert r.zcard(Q) == 0 and counts(r) == (0, 1, 0)
    assert push_batch(r, request("part", old="+" + qid, lease="L0", level="pending/1")) == "1"
    assert r.hexists(INFLIGHT, qid) and counts(r) == (1, 1, 0) and r.hget(keys.job_progress("j"), "pending/1") == b"2"
    assert push_batch(r, request("now", old=qid, lease="L0", level="pending/1")) == "1"  # the retry, a round trip later
    assert not r.hexists(INFLIGHT, qid) and counts(r) == (2, 0, 0)
    taken = [pop(r, "w", f"L{i}") for i in (1, 2)]
    assert [(tag_of(t[1]), t[3]) for t in taken] == [("part", 1), ("now", 1)]
    assert ack(r, qid_of(taken[0][1]), "L1", qid_of(taken[1][1]), "L2", level="pending/1") == 2
    assert not r.exists(DELIVERIES) and r.hget(keys.job_progress("j"), "pending/1") == b"0"


def test_quota_reserve__a_lanes_reservations_count_only_until_they_expire_whatever_its_window(r):
    """A lane with a known window: quota while fewer unexpired reservations fly than its remaining count; the
    expired ones (a dead worker's) never count, however many sit in the lane's ZSET (quota_common's best_lane
    counts them only when the ZSET has as many members as the quota left)."""
    reset = int(redis_now(r)) + 900
    run(r, "quota_reserve", lane(), [1.0, 0, 60, "r0"])
    run(r, "quota_answered", lane(), ["r0", 200, 15, 2, reset])
    assert [run(r, "quota_reserve", lane(), [1.0, 0, 60, f"r{i}"]) for i in (1, 2, 3)] == [1, 1, 0]  # 2 left, 2 flying
    r.zadd(lane()[1], {"r1": redis_now(r) - 1})  # r1 expired: 2 members, 1 flying
    assert run(r, "quota_available", lane(), [1.0]) == 1
    assert run(r, "quota_reserve", lane(), [1.0, 0, 60, "r4"]) == 1 and r.zrange(lane()[1], 0, -1) == [b"r2", b"r4"]
    assert run(r, "quota_reserve", lane(), [1.0, 0, 60, "r5"]) == 0
    r.hset(lane()[0], "reset", 0)  # no window (srem 2 read before it rolled): the remaining count still bounds it
    assert run(r, "quota_reserve", lane(), [1.0, 0, 60, "r6"]) == 0


def test_queue_push__cost_seen__grown_across_levels_each_19_digit_id_stays_in_the_bucket_its_exact_hash_names(r):
    """lhash.lua's growth (a bucket's members re-hashed and split, over several levels) with ids of 15 to 19 digits
    (past Lua's exact doubles: hashed in two parts): a job's claims (HASH buckets, claimed in the push, "K") and the
    billed ids (SET buckets, cost_seen.lua) each hold every id once, in the bucket seen.py's exact integer hash gives,
    every bucket compact and a billed bucket with its sentinel and TTL; a second push or billing of them adds nothing.
    A split whose new bucket exists already (not made by lhash.lua) adds its members to it, keeping what it held."""
    import random

    from tweetform.state.redis.seen import SeenUsers, bucket_index

    rng = random.Random(19)
    edge = [2**63 - 1, 10**18, 10**18 + 1, 10**15 - 1, 10**15, 10**16 - 1, 2**53 + 1]
    ids = list(dict.fromkeys([*edge, *(rng.randrange(10**15, 2**63) for _ in range(2500)),
                              *(rng.randrange(10**6, 10**10) for _ in range(500))]))
    rng.shuffle(ids)
    new_job(r)
    assert SeenUsers(r).claim("j", [1], "seed") == [1]  # the layout (load 32 on this server)
    stray = next(u for u in range(10**18, 10**18 + 99) if bucket_index(u, 2, 0) == 2 and u not in ids)
    r.hset(f"{keys.expanded_buckets('j')}2", stray, "-1")  # in the bucket the second split makes, before it

    def k_run(uids: list[int]) -> list:
        return [Q, "/friends/ids", "j", 0, "\n".join(f"~{u},2" for u in uids), "", "", "K", keys.expanded("j"),
                keys.expanded_buckets("j"), ",".join(map(str, uids)), ""]

    flags = "".join(push_batch(r, k_run(ids[i:i + 300])) for i in range(0, len(ids), 300))
    assert flags == "2" * len(ids)
    billed = keys.cost_seen("app", "user", "2026-12-07")
    new = sum(run(r, "cost_seen", [billed], [compact.bucket_prefix(billed), 8, 100, *ids[i:i + 250]])
              for i in range(0, len(ids), 250))
    assert new == len(ids)
    for layout, expect, read in ((keys.expanded("j"), len(ids) + 1, r.hkeys), (billed, len(ids), r.smembers)):
        lvl, split, n = (int(v) for v in r.hmget(layout, "lvl", "split", "n"))
        assert lvl >= 6 and n == expect
        buckets = compact.bucket_keys(r, layout)
        held = {b: {int(m) for m in read(b)} - {stray} for b in buckets}
        assert sum(len(m) for m in held.values()) == expect + (len(buckets) if read == r.smembers else 0)  # sentinels
        for uid in ids:
            assert uid in held[f"{compact.bucket_prefix(layout)}{bucket_index(uid, lvl, split)}"], (layout, uid)
        assert {r.object("encoding", b) for b in buckets} == ({b"listpack"} if read == r.hkeys else {b"intset"})
    assert all(0 in r.smembers(b) or b"0" in r.smembers(b) for b in compact.bucket_keys(r, billed))
    assert all(0 < r.ttl(b) <= 100 for b in [billed, *compact.bucket_keys(r, billed)])
    lvl, split = (int(v) for v in r.hmget(keys.expanded("j"), "lvl", "split"))
    assert r.hget(f"{keys.expanded_buckets('j')}{bucket_index(stray, lvl, split)}", stray) == b"-1"  # kept, moved on with the rest
    assert push_batch(r, k_run(ids[:300])) == "3" * 300
    assert run(r, "cost_seen", [billed], [compact.bucket_prefix(billed), 8, 100, *ids[:250]]) == 0
