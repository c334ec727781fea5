"""What a scrapy start costs before it does anything: Scrapy imports every module of ``COMMANDS_MODULE``
(tweetform.commands) on every start, whatever the command, so those modules import at their top only what
naming and describing a command needs; what a command runs is imported when it runs (bench/startup_bench.py
measures the CPU this saves per process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

#: what a start may import of tweetform: the settings (and what they read) and the command modules
ALLOWED = {"tweetform", "tweetform.cli", "tweetform.settings", "tweetform.config", "tweetform.config_json", "tweetform.exitcodes",
           "tweetform.logs", "tweetform.credentials", "tweetform.commands"}
#: heavy modules (tens of ms of CPU each) that only some commands need; Scrapy's own start imports none of them
HEAVY = ("scrapy.core.downloader.handlers.http11", "redis", "scrapy_redis", "requests", "requests_oauthlib", "oauthlib",
         "aiohttp", "sqlite3", "tarfile")

#: runs a command line the way the console scripts do, then prints the modules the process holds
PROBE = """
import json, sys
from {module} import {function}
sys.argv = {argv!r}
try:
    {function}({args})
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def modules_after(argv: list[str], *, console: bool = False, cwd: Path = ROOT) -> tuple[str, set[str]]:
    """(stdout, the modules imported) of ``scrapy ARGS`` (or the ``tweetform`` console command)."""
    if console:
        code = PROBE.format(module="tweetform.cli", function="main", argv=["tweetform", *argv], args="")
    else:
        code = PROBE.format(module="scrapy.cmdline", function="execute", argv=["scrapy", *argv], args="sys.argv")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWEETFORM_", "REDIS_", "SCRAPY_"))}
    env["PYTHONWARNINGS"] = "error"
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    return done.stdout, set(json.loads(done.stderr.strip().splitlines()[-1]))


def commands() -> list[str]:
    return sorted(p.stem for p in (ROOT / "tweetform" / "commands").glob("*.py") if p.stem not in ("__init__", "errors"))


@pytest.mark.parametrize("console", [False, True], ids=["scrapy", "tweetform"])
def test_a_start_imports_no_command_s_work(console, tmp_path):
    """``scrapy version`` (in the project) and ``tweetform version`` (anywhere) import every command module,
    and nothing of what the commands do: no Redis client, no HTTP download handler, no planning, no sandbox."""
    out, loaded = modules_after(["version"], console=console, cwd=tmp_path if console else ROOT)
    assert out.startswith("Scrapy ")
    assert {f"tweetform.commands.{name}" for name in commands()} <= loaded  # the project's commands were found
    ours = {m for m in loaded if m.startswith("tweetform") and not m.startswith("tweetform.commands.")}
    assert ours - ALLOWED == set()
    assert [m for m in HEAVY if m in loaded] == []


def test_every_command_is_still_listed():
    out, _ = modules_after(["-h"])
    listed = {line.split()[0] for line in out.splitlines() if line.startswith("  ") and line.split()}
    assert set(commands()) <= listed


CRAWL_PROBE = """
import json, sys
from scrapy.utils.conf import build_component_list
from scrapy.utils.misc import load_object
from scrapy.utils.project import get_project_settings
settings = get_project_settings()
for name in ("EXTENSIONS", "DOWNLOADER_MIDDLEWARES", "SPIDER_MIDDLEWARES"):  # as a crawler's managers load them
    for path in build_component_list(settings.get_component_priority_dict_with_base(name)):
        load_object(path)
print(json.dumps(sorted(sys.modules)))
"""


def test_a_crawl_start_imports_no_component_it_switched_off():
    """Scrapy 2.19 imports every entry of its component lists, switched-off ones too: the remote control
    (aiohttp), the telnet console (twisted.conch) and the cookies middleware (tldextract, requests) that
    tweetform's settings turn off are not in its lists at all."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWEETFORM_", "REDIS_", "SCRAPY_"))}
    done = subprocess.run([sys.executable, "-c", CRAWL_PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
                          check=True)
    loaded = set(json.loads(done.stdout))
    assert "tweetform.progress" in loaded and "scrapy.downloadermiddlewares.retry" in loaded  # the lists were read
    assert [m for m in ("aiohttp", "scrapy.extensions.remote_control", "scrapy.extensions.telnet", "tldextract",
                        "requests", "scrapy.downloadermiddlewares.cookies") if m in loaded] == []
