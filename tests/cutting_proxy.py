"""Test-only: a TCP proxy process in front of Redis that loses an answer on the way back.

``python tests/cutting_proxy.py <redis port> <hex pattern> <skip>`` listens on a free 127.0.0.1 port (printed on
its first stdout line) and forwards every connection to 127.0.0.1:<redis port>, except once: the first request
chunk after ``skip`` others that contains the pattern (e.g. a script's SHA1, sent with EVALSHA) is forwarded, Redis's answer is
awaited (so the command ran) and dropped, and both sides are closed: the client sees the connection cut
after its request was written. It prints ``cut`` then; it stops by itself after ``LIFETIME`` seconds or when
its stdin closes (the test process gone). :class:`CuttingProxy` starts it."""

from __future__ import annotations

import asyncio
import select
import subprocess
import sys
import threading
from pathlib import Path

LIFETIME = 120.0  # seconds: a proxy a test forgot never outlives the test run by much


async def _serve(redis_port: int, pattern: bytes, skip: int) -> None:
    seen, cuts = [0], [1]

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            redis_r, redis_w = await asyncio.open_connection("127.0.0.1", redis_port)
        except OSError:
            client_w.close()
            return
        cut = asyncio.Event()

        async def up() -> None:
            tail = b""
            while data := await client_r.read(65536):
                if cuts[0] and pattern in tail + data:
                    seen[0] += 1
                    if seen[0] > skip:
                        cuts[0] -= 1
                        cut.set()
                redis_w.write(data)
                await redis_w.drain()
                tail = data[-len(pattern):]

        async def down() -> None:
            while data := await redis_r.read(65536):
                if cut.is_set():  # Redis answered: the request ran; its answer is lost
                    print("cut", flush=True)
                    return
                client_w.write(data)
                await client_w.drain()

        tasks = [asyncio.ensure_future(up()), asyncio.ensure_future(down())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for writer in (client_w, redis_w):
                writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    stdin_closed = asyncio.get_running_loop().create_future()

    def watch_stdin() -> None:
        sys.stdin.read()
        stdin_closed.get_loop().call_soon_threadsafe(lambda: stdin_closed.done() or stdin_closed.set_result(None))

    threading.Thread(target=watch_stdin, daemon=True).start()
    async with server:
        await asyncio.wait([stdin_closed], timeout=LIFETIME)


class CuttingProxy:
    """The proxy process (module doc), in front of the Redis on ``redis_port``; ``cut()`` waits for its cut."""

    def __init__(self, redis_port: int, pattern: str, skip: int = 0) -> None:
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__)), str(redis_port), pattern, str(skip)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def cut(self, wait: float = 5.0) -> bool:
        """Whether the proxy has cut a connection (it says so once it has: waited for ``wait`` seconds at most)."""
        assert self.proc.stdout is not None
        if not select.select([self.proc.stdout], [], [], wait)[0]:
            return False
        return self.proc.stdout.readline().strip() == "cut"

    def stop(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1]), sys.argv[2].encode(), int(sys.argv[3])))
