"""Live progress: a line that updates in a pseudo-terminal, log lines otherwise, and quota waits said out loud."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import select
import sys
import time
from pathlib import Path

import pytest
from crawling import ROOT, bucket, demo_credentials, run_crawl, unit_crawler
from scrapy.exceptions import NotConfigured

from tweetform.progress import CLEAR, ProgressExtension, TerminalLine

WAIT_LINE = re.compile(r"waiting (\d+ s|\d+ m \d+ s) for /2/users/:id/following quota \(1 credential lane\(s\) used up\), "
                       r"resumes \d\d:\d\d:\d\d UTC")


def crawl_in_pty(box, output: Path, *args: str, timeout: float = 120) -> str:
    """Run ``scrapy crawl`` with a pseudo-terminal as stdout and stderr; everything it printed."""
    import pty

    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWEETFORM_", "REDIS_"))}
    env.update(TWEETFORM_API_BASE=box.base, TWEETFORM_OUTPUT_DIR=str(output), PYTHONWARNINGS="error",
               TWEETFORM_CREDENTIALS=json.dumps(demo_credentials("demo-user-1")), TWEETFORM_QUOTA_RESET_MARGIN="0.1",
               COLUMNS="400", TWEETFORM_BUDGET_USD="unlimited")
    pid, fd = pty.fork()
    if pid == 0:  # the child: a real terminal on fd 0-2
        os.chdir(ROOT)
        os.execve(sys.executable, [sys.executable, "-m", "scrapy", "crawl", *args, "-L", "INFO"], env)
    out = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, out.decode(errors="replace")[-3000:]
    return out.decode(errors="replace")


INTERVAL = 0.5  # TWEETFORM_PROGRESS_INTERVAL of the log-lines test (seconds)


def clock_seconds(line: str) -> int:
    """The crawl's own elapsed time a progress line shows (``· h:mm:ss``)."""
    h, m, s = re.search(r" · (\d+):(\d\d):(\d\d)(?: · |$)", line).groups()  # type: ignore[union-attr]
    return int(h) * 3600 + int(m) * 60 + int(s)


def lines_written(output: Path) -> int:
    """Data pages written (the errors bucket's records are counted apart)."""
    return sum(len(p.read_bytes().splitlines()) for p in output.glob("*/*.jsonl") if p.parent.name != "errors")


def error_records(output: Path) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in output.glob("errors/*.jsonl"))


def test_live_line_in_a_terminal(sandbox_factory, tmp_path: Path):
    box = sandbox_factory("--users", "3000", "--seed", "7", "--window", "2", "--limit", "/2/users/:id/following=4")
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    text = crawl_in_pty(box, tmp_path, "friends", "-a", f"user_id={seed}", "-a", "depth=2", "-a", "max_users=9")
    redraws = text.split(CLEAR)
    states = [r.split("\r\n")[0] for r in redraws[1:] if r.startswith("friends · ")]
    assert len(states) >= 4, text[-2000:]  # redrawn in place, again and again
    final = states[-1]
    assert re.match(rf"friends · {lines_written(tmp_path)} pages? · users 9/9 · {error_records(tmp_path)} errors? · ", final), final
    # while quota ran out, the line said which endpoint waits, with how many credentials, until when
    assert any(WAIT_LINE.search(s) for s in states), states
    # log records are printed above the line (the line is cleared first), never glued to it
    for m in re.finditer(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[", text):
        before = text[max(0, m.start() - len(CLEAR)) : m.start()]
        assert m.start() == 0 or before == CLEAR or before.endswith("\n"), repr(text[m.start() - 80 : m.start() + 40])
    assert text.rstrip().splitlines()[-1].startswith("tweetform: data in ")  # the closing summary comes last


def test_log_lines_when_not_a_terminal_and_never_silent(sandbox_factory, tmp_path: Path):
    box = sandbox_factory("--users", "3000", "--seed", "7", "--window", "2", "--limit", "/2/users/:id/following=4")
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    result = run_crawl(box, "friends", tmp_path, credentials=demo_credentials("demo-user-1"), user_id=seed, depth=2,
                       max_users=9, settings={"TWEETFORM_PROGRESS_INTERVAL": str(INTERVAL)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert CLEAR not in result.stderr
    lines = [line for line in result.stderr.splitlines() if "[tweetform.progress] INFO: progress: friends · " in line]
    assert len(lines) >= 4
    final = rf"progress: friends · {lines_written(tmp_path)} pages? · users 9/9 · {error_records(tmp_path)} errors? · "
    assert re.search(final, lines[-1]), lines[-1]
    waiting = [line for line in lines if WAIT_LINE.search(line)]
    assert len(waiting) >= 2  # a wait keeps being reported, with the time left
    # never silent: by the crawl's own clock (the h:mm:ss since it began that each line shows), a line came at least
    # every other interval on average (a stall of the machine for a second or two costs a few lines, not the test)
    elapsed = [clock_seconds(line) for line in lines]
    assert elapsed == sorted(elapsed) and elapsed[-1] >= 2, lines  # quota waits of 2 s windows: the crawl takes seconds
    assert len(lines) >= elapsed[-1] / (2 * INTERVAL), lines


def test_progress_modes():
    for mode in ("off", "sideways"):
        with pytest.raises(NotConfigured):
            ProgressExtension.from_crawler(unit_crawler(settings_dict={"TWEETFORM_PROGRESS": mode}))
    ext = ProgressExtension.from_crawler(unit_crawler(settings_dict={"TWEETFORM_PROGRESS": "auto"}))
    assert ext.mode == "log"  # pytest's stderr is not a terminal


class _Source:
    def __init__(self, text: str) -> None:
        self.text = text

    def line(self) -> str:
        return self.text


def test_terminal_line_keeps_log_records_above_it():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        display = TerminalLine(stream)
        source = _Source("friends · 1 page")
        display.attach(source)  # type: ignore[arg-type]
        display.draw()
        logging.getLogger("x").warning("a log record")
        source.text = "friends · 2 pages"
        display.draw()
        display.detach(source)  # type: ignore[arg-type]
        assert handler.stream is stream  # the handler is given its stream back
    finally:
        root.removeHandler(handler)
    assert stream.getvalue() == (f"{CLEAR}friends · 1 page{CLEAR}a log record\n{CLEAR}friends · 1 page"
                                 f"{CLEAR}friends · 2 pages{CLEAR}friends · 2 pages\n")


def test_idle_crawl_logs_rarely(caplog):
    crawler = unit_crawler(settings_dict={"TWEETFORM_PROGRESS": "log", "TWEETFORM_PROGRESS_INTERVAL": 30})
    ext = ProgressExtension.from_crawler(crawler)
    with caplog.at_level(logging.INFO, logger="tweetform.progress"):
        ext.log()
        ext.log()  # nothing new, no wait: skipped
        crawler.stats.inc_value("tweetform/pages/written")
        ext.log()
        ext.log(final=True)  # the last line always comes
    assert [r.getMessage()[:28] for r in caplog.records] == ["progress: crawl · 0 pages · ", "progress: crawl · 1 page · 0",
                                                             "progress: crawl · 1 page · 0"]


def test_progress_line_shows_spend_and_budget(sandbox_factory, tmp_path: Path):
    box = sandbox_factory("--users", "3000", "--seed", "7", "--window", "1")
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    result = run_crawl(box, "friends", tmp_path, user_id=seed, budget=5, settings={"TWEETFORM_PROGRESS": "log"})
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if "[tweetform.progress] INFO: progress: friends · " in line]
    accounts = sum(len(page.get("data") or []) for pages in bucket(tmp_path, "friend_ids").values() for page in pages)
    assert accounts > 0
    spent = f"${accounts * 0.01:,.2f}" if accounts * 0.01 >= 0.1 else f"${accounts * 0.01:,.3f}"
    assert f" · {spent} spent of $5.00 · " in lines[-1], lines[-1]


def test_the_progress_line_goes_on_while_redis_is_away_with_the_numbers_last_read(caplog):
    """A distributed crawl's line reads the whole job's numbers and its quota waits from Redis on each tick: Redis
    away (a restart; its client makes no retry of its own) makes the tick show the numbers it last read, not raise
    (a raise stopped the line's timer for the rest of the crawl); they are read again once Redis is back."""
    from types import SimpleNamespace

    from tweetform import state
    from tweetform.job import JobArgs
    from tweetform.testing.servers import RedisServer

    server = RedisServer()
    try:
        crawler = unit_crawler(settings_dict={"TWEETFORM_PROGRESS": "log", "REDIS_URL": server.url,
                                              "TWEETFORM_CREDENTIALS": json.dumps(demo_credentials())})
        ext = ProgressExtension.from_crawler(crawler)
        job = JobArgs(spider="friends", job="p1", api="twitter", bucket="friend_ids", user_ids=[1])
        store = state.job_store(crawler)
        store.save(job)
        store.progress("p1", pages=3)
        store.flush()
        state.gate(crawler).note_waiting("/2/users/:id/following")
        crawler.spider = SimpleNamespace(name="friends", given_job=job)
        with caplog.at_level(logging.INFO, logger="tweetform.progress"):
            ext.log(final=True)
            server.stop_process()
            ext.log(final=True)
            ext.line()  # the terminal line's tick
        lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress: ")]
        assert len(lines) == 2 and all(line.startswith("progress: friends · 3 pages · ") for line in lines), lines
    finally:
        state.job_store(crawler).server.close()
        server.stop()
