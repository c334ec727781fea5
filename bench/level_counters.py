"""Issue 16 §4: what the per-level pending counters cost Redis (``pending/<level>`` in a job's progress hash,
kept by ``queue_push.lua`` and ``queue_ack.lua`` for ``last_complete_level``).

Starts its own ``redis-server`` (loopback, free port, no persistence) and runs, side by side in one run,
each case with and without a level counter (``""``: the scripts skip it, as for a request with no level):

* **push** — 200 calls of 500 packed first pages of one job and level (a page's children, as a worker pushes
  them): Redis µs per pushed request (``INFO commandstats`` evalsha usec ÷ requests);
* **ack** — 5,000 calls acknowledging one in-flight request each (a worker acks each page as it is done):
  Redis µs per ack call.

Prints the median of ``--rounds`` rounds per case and the ratio with counter ÷ without.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import time

import redis

from tweetform.state.redis import keys, scripts


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def script_usec(r: redis.Redis) -> int:
    return sum(v["usec"] for k, v in r.info("commandstats").items() if k in ("cmdstat_evalsha", "cmdstat_eval"))


def push_case(r: redis.Redis, level: str, calls: int = 200, batch: int = 500) -> float:
    push = scripts.load(r, "queue_push")
    queue = keys.queue("friends", "/friends/ids")
    r.flushall()
    r.hset(keys.job("j"), mapping={"state": "running"})
    r.config_resetstat()
    for b in range(calls):
        args: list = [keys.job_templates(), 32, 0]  # no acknowledgements
        for i in range(batch):
            args += [queue, "/friends/ids", "j", -2, f"~{b * batch + i},2", "", "", "", "", "", b"", level]
        push(keys=[keys.queue_sequence("friends"), keys.in_flight("friends"), keys.queue_endpoints("friends"), keys.deliveries("friends")], args=args)
    return script_usec(r) / (calls * batch)


def ack_case(r: redis.Redis, level: str, calls: int = 5000) -> float:
    ack = scripts.load(r, "queue_ack")
    inflight = keys.in_flight("friends")
    r.flushall()
    r.hset(keys.job("j"), mapping={"state": "running", "inflight": calls + 1, "queued": 1})
    entry = json.dumps({"w": "w", "l": "L", "t": 1, "q": "q", "s": 0, "d": "x", "j": "j"})
    r.hset(inflight, mapping={str(i): entry for i in range(calls)})
    r.config_resetstat()
    for i in range(calls):
        ack(keys=[inflight, keys.deliveries("friends")], args=[keys.job_templates(), str(i), "L", level])
    return script_usec(r) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    port = free_port()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                              stdout=subprocess.DEVNULL)
    try:
        r = redis.Redis(port=port)
        for _ in range(100):
            try:
                r.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        for name, case, unit in (("push", push_case, "µs per pushed request"), ("ack", ack_case, "µs per ack call")):
            got: dict[str, list[float]] = {"without": [], "with": []}
            for _ in range(rounds):  # interleaved: load on the machine hits both alike
                got["without"].append(case(r, ""))
                got["with"].append(case(r, "pending/2"))
            without, with_ = statistics.median(got["without"]), statistics.median(got["with"])
            print(f"{name}: {without:.2f} without the level counter, {with_:.2f} with it ({unit} of Redis time); "
                  f"ratio {with_ / without:.2f}")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
