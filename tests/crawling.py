"""Run real ``scrapy crawl`` processes against a sandbox and read what they wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from scrapy.crawler import Crawler
from scrapy.utils.test import get_crawler

from tweetform.sandbox.credentials import demo_credentials_as_settings

ROOT = Path(__file__).resolve().parent.parent
#: settings of a crawl whose test reads Scrapy's stats dump or enabled components: at the default log level
#: they are DEBUG lines (tweetform.logs); a LOG_FILE keeps the whole log, here on the crawl's own stderr
FULL_LOG = {"LOG_FILE": "/dev/stderr"}


def unit_crawler(spidercls: Any = None, settings_dict: dict[str, Any] | None = None) -> Crawler:
    """Scrapy's ``get_crawler`` with the tweetform add-on, which holds what a crawler's components share."""
    return get_crawler(spidercls, {"ADDONS": {"tweetform.addons.DistributedAddon": 100}, **(settings_dict or {})})


def demo_credentials(*aliases: str) -> list[dict[str, str]]:
    creds = demo_credentials_as_settings()
    return [c for c in creds if c["alias"] in aliases] if aliases else creds


def crawl_env(sandbox: Any, output: Path, credentials: list[dict] | None = None) -> dict[str, str]:
    """The environment of a crawl against a sandbox (no setting leaks in from the caller's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWEETFORM_", "REDIS_", "ROTATING_PROXY_"))}
    env["TWEETFORM_API_BASE"] = sandbox.base
    env["TWEETFORM_CREDENTIALS"] = json.dumps(credentials if credentials is not None else demo_credentials("demo-user-1", "demo-app-1"))
    env["TWEETFORM_OUTPUT_DIR"] = str(output)
    env["PYTHONWARNINGS"] = "error"
    # the sandbox runs on this machine's clock: a small margin past each window's reset is enough
    env["TWEETFORM_QUOTA_RESET_MARGIN"] = "0.1"
    # these tests check what a crawl collects, not what it may spend: no default budget stops them early
    # (tests of budgets give -a budget=USD, or override this)
    env["TWEETFORM_BUDGET_USD"] = "unlimited"
    return env


def run_crawl(
    sandbox: Any, spider: str, output: Path, *, credentials: list[dict] | None = None, settings: dict[str, Any] | None = None,
    timeout: float = 240, cli: tuple[str, ...] = (), **args: Any,
) -> subprocess.CompletedProcess:
    env = crawl_env(sandbox, output, credentials)
    cmd = [sys.executable, "-m", "scrapy", "crawl", spider, "-L", "INFO", *cli]
    for name, value in args.items():
        cmd += ["-a", f"{name}={value}"]
    for name, value in (settings or {}).items():
        cmd += ["-s", f"{name}={value}"]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def bucket(output: Path, name: str) -> dict[str, list[dict[str, Any]]]:
    """key -> parsed lines of ``<output>/<name>/<key>.jsonl``."""
    folder = output / name
    if not folder.is_dir():
        return {}
    return {p.stem: read_lines(p) for p in sorted(folder.glob("*.jsonl"))}


def ids_of(pages: list[dict[str, Any]]) -> list[int]:
    """Account or tweet ids in page order, from pages of either API version."""
    out: list[int] = []
    for page in pages:
        if "ids" in page:
            out += [int(i) for i in page["ids"]]
        elif "users" in page:
            out += [int(u["id_str"]) for u in page["users"]]
        elif "statuses" in page:
            out += [int(t["id_str"]) for t in page["statuses"]]
        elif isinstance(page.get("id"), dict):  # statuses/lookup with map=true
            out += [int(t["id_str"]) for t in page["id"].values() if t]
        elif "page" in page:
            out += [int(o["id_str"]) for o in page["page"]]
        else:
            out += [int(o["id"]) for o in page.get("data") or []]
    return out



def users_written(folder: Path) -> int:
    """Distinct users in a network bucket's files while workers still write them (a torn last line is skipped):
    each file's own user and every id listed in it."""
    users: set[int] = set()
    for path in folder.glob("*.jsonl") if folder.is_dir() else []:
        users.add(int(path.stem))
        for line in path.read_bytes().splitlines():
            try:
                users.update(ids_of([json.loads(line)]))
            except ValueError:
                continue
    return len(users)

def errors_of(output: Path) -> dict[str, str]:
    """target id -> reason, from the errors bucket."""
    found: dict[str, str] = {}
    for lines in bucket(output, "errors").values():
        for line in lines:
            found[str(line["id"])] = line["reason"]
    return found
