"""Before a crawl starts: can anything be reached at the configured addresses?

A crawl whose ``TWEETFORM_API_BASE`` names a host nothing listens on, or whose
every proxy refuses connections, would otherwise retry each page until it
"failed for good" and then report every page failed. One TCP connection per
address tells the user at once, in one line naming the setting (exit 2).
Only reachability is checked: the API's answers are the crawl's business.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

from tweetform.proxies.config import hostport, redact

TIMEOUT = 5.0


def connect_problem(host: str, port: int, timeout: float = TIMEOUT) -> str | None:
    """Why a TCP connection to host:port cannot be made, or None when it can."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except socket.gaierror:
        return f"host {host!r} not found"
    except socket.timeout:
        return f"no answer from {host}:{port} within {timeout:g} s"
    except OSError as exc:
        return f"{host}:{port}: {exc.strerror or type(exc).__name__}"


def api_base_problem(base: str, timeout: float = TIMEOUT, setting: str = "TWEETFORM_API_BASE") -> str | None:
    """One line when an API host setting (TWEETFORM_API_BASE, TWEETFORM_BLUESKY_APPVIEW/_PDS) cannot be
    used (malformed or unreachable), else None."""
    example = "https://public.api.bsky.app" if "BLUESKY" in setting else "https://api.twitter.com"
    try:
        parts = urlsplit(base)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return f"{setting} {base!r} is not a URL like {example}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{setting} {base!r} is not a URL like {example}"
    if parts.scheme in getproxies() and not proxy_bypass(parts.hostname):
        return None  # reached through an environment proxy (http_proxy/https_proxy, Scrapy's HttpProxyMiddleware)
    problem = connect_problem(parts.hostname, port, timeout)
    return f"{setting} {base} cannot be reached: {problem}" if problem else None


def proxies_problem(proxies: list[str], timeout: float = TIMEOUT) -> str | None:
    """One line when no proxy of the list accepts a connection (some dead ones are the rotation's business)."""
    if not proxies:
        return None
    problems = []
    for proxy in proxies:
        host, _, port = hostport(proxy).rpartition(":")
        problem = connect_problem(host.strip("[]"), int(port), timeout)
        if problem is None:
            return None
        problems.append(f"{redact(proxy)}: {problem.split(': ', 1)[-1]}")
    shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
    return f"no configured proxy accepts connections ({shown}): check ROTATING_PROXY_LIST / ROTATING_PROXY_LIST_PATH / TWEETFORM_PROXY_FILE"


def output_dir_problem(path: str) -> str | None:
    """One line when TWEETFORM_OUTPUT_DIR cannot hold the buckets (nothing is created to find out)."""
    target = Path(path or "data").absolute()
    probe = target
    while not probe.exists():  # the nearest existing ancestor decides whether it can be created
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        return f"TWEETFORM_OUTPUT_DIR {path}: {probe} is not a directory"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"TWEETFORM_OUTPUT_DIR {path}: {probe} is not writable"
    return None
