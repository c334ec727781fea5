"""Quiet by default: at the default log level a crawl shows tweetform's own lines, not Scrapy's dumps.

Scrapy logs at INFO its version table, the add-ons, extensions, middlewares and
pipelines it enabled, the settings that differ from its defaults, a page count
every minute and the whole stats dictionary at the end: about a hundred lines
for a three-page crawl, none of which a user acts on. :func:`quiet_scrapy`
demotes exactly those records to DEBUG (a logger filter, before any handler
sees them), so ``-L DEBUG`` shows them again, and so does ``LOG_FILE`` (a log
file is for reading later: it keeps everything, as Scrapy writes it). tweetform's
progress line and closing summary say what they said, in a few lines.
"""

from __future__ import annotations

import logging
from typing import Any

#: logger -> the start of each INFO message demoted to DEBUG ("" = every INFO message of that logger)
DEMOTED: dict[str, tuple[str, ...]] = {
    "scrapy.utils.log": ("Scrapy %(version)s started", "Versions:"),
    "scrapy.addons": ("Enabled addons",),
    "scrapy.middleware": ("Enabled ",),
    "scrapy.crawler": ("Overridden settings",),
    "scrapy.core.engine": ("Spider opened", "Closing spider", "Spider closed"),
    "scrapy.extensions.logstats": ("",),  # "Crawled N pages": the progress line says it, with more
    "scrapy.statscollectors": ("Dumping Scrapy stats",),
}


class DemoteToDebug(logging.Filter):
    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and str(record.msg).startswith(self.prefixes):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"  # handlers at INFO drop it
        return True


_installed: list[tuple[logging.Logger, DemoteToDebug]] = []


def quiet_scrapy(settings: Any) -> None:
    """Demote Scrapy's start-up dumps and stats to DEBUG, unless a ``LOG_FILE`` is written."""
    if settings.get("LOG_FILE") or _installed:
        return
    for name, prefixes in DEMOTED.items():
        logger, found = logging.getLogger(name), DemoteToDebug(prefixes)
        logger.addFilter(found)
        _installed.append((logger, found))


def loud_scrapy() -> None:
    """Scrapy's own logging again (tests that run commands in-process)."""
    while _installed:
        logger, found = _installed.pop()
        logger.removeFilter(found)
