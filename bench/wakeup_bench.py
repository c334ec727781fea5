"""What a round trip costs redis-server when it follows another at once, against one pipeline carrying both.

A worker's pop used to send what ``sync()`` had waiting (push + acknowledgements) in a round trip of its own, then
the pop: two round trips back to back. Merged into one pipeline (helper "popsync"), is Redis's CPU per page lower?
An idle Redis woken every ``--pause`` s (0.06 s: a worker of 16 pages/s; 0.007 s: ~140 pages/s; 0: busy), each
wake-up sending either two pipelines back to back (two small scripts, one each), one pipeline with both, or one
script alone. redis-server CPU from /proc/<pid>/task/*/schedstat (serverCron's share of the pause included, the
same for the three), per wake-up; the three interleaved over ``--rounds`` rounds (odd rounds reversed).

    .venv/bin/python bench/wakeup_bench.py --pause 0.06 --calls 300 --rounds 3
"""

from __future__ import annotations

import argparse
import glob
import time
from typing import Any, Callable

from tweetform.testing.servers import RedisServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pause", type=float, default=0.06, help="seconds between wake-ups")
    parser.add_argument("--calls", type=int, default=300, help="wake-ups per row and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    server = RedisServer()
    try:
        r = server.client
        pid = int(r.info("server")["process_id"])

        def cpu_us() -> float:
            return sum(int(open(f).read().split()[0]) for f in glob.glob(f"/proc/{pid}/task/*/schedstat")) / 1000

        first = r.register_script("redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return 1")  # a push's stand-in
        second = r.register_script("return redis.call('HINCRBY', KEYS[1], 'n', 1)")  # a pop's stand-in
        first(keys=["x"], args=["f", "v"])
        second(keys=["y"])

        def send(pipe: Any, n: int, *scripts: Any) -> None:
            for script in scripts:
                pipe.evalsha(script.sha, 1, "x", n % 1000, "v") if script is first else pipe.evalsha(script.sha, 1, "y")

        def trip(n: int, *scripts: Any) -> None:
            pipe = r.pipeline(transaction=False)
            send(pipe, n, *scripts)
            pipe.execute()

        rows: dict[str, Callable[[int], None]] = {
            "two round trips back to back": lambda n: (trip(n, first), trip(n, second)),
            "one pipeline with both": lambda n: trip(n, first, second),
            "the second script alone": lambda n: trip(n, second),
        }
        got: dict[str, list[float]] = {name: [] for name in rows}
        for round_ in range(args.rounds):
            for name, row in (list(rows.items()) if round_ % 2 == 0 else list(rows.items())[::-1]):
                before = cpu_us()
                for n in range(args.calls):
                    row(n)
                    time.sleep(args.pause)
                got[name].append((cpu_us() - before) / args.calls)
        print(f"redis-server CPU µs per wake-up, one every {args.pause:g} s, {args.calls} × {args.rounds} rounds:")
        for name, values in got.items():
            print(f"  {name}: {' / '.join(f'{v:.1f}' for v in values)} (median {sorted(values)[len(values) // 2]:.1f})")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
