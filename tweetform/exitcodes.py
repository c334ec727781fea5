"""Every tweetform command's exit status, in one place (README: "Exit status").

A command's status tells a script what happened without reading the log:
0 only when everything asked for was collected. The codes are shared by
``crawl``, ``worker``, ``push --wait``, ``wait`` and ``collect``.
"""

from __future__ import annotations

from typing import Any, Mapping

DONE = 0  # finished, every page collected (a page the API refused for a user, e.g. protected, is data, not failure)
ERROR = 1  # an unexpected error (a bug, or Scrapy could not start the crawler)
BAD_INPUT = 2  # bad argument, setting, config file or job message: one line on stderr, nothing fetched
PAGES_FAILED = 3  # finished, but some pages failed for good (recorded in the ``errors`` bucket as ``failed``)
NO_CREDENTIALS = 4  # every credential was rejected by the API (finish_reason ``no_usable_credentials``)
UNREACHABLE = 5  # a service could not be reached: the API (no answer at all), Redis, or the proxy list
# (scrapy push whose link broke after the job message was sent: its line says the job may have been queued)
CANCELLED = 6  # the job was cancelled (``scrapy admin cancel``)
BUDGET_EXHAUSTED = 7  # the job's spending budget ran out before its work did
INTERRUPTED = 8  # stopped before the end (Ctrl-C, SIGTERM, ``scrapy admin stop-node``)
QUOTA_USED_UP = 9  # scrapy plan: every credential's quota for a look-up is used up until a reset too far to wait for

NAMES: dict[int, str] = {
    DONE: "done",
    ERROR: "error",
    BAD_INPUT: "bad_input",
    PAGES_FAILED: "pages_failed",
    NO_CREDENTIALS: "no_credentials",
    UNREACHABLE: "unreachable",
    CANCELLED: "cancelled",
    BUDGET_EXHAUSTED: "budget_exhausted",
    INTERRUPTED: "interrupted",
    QUOTA_USED_UP: "quota_used_up",
}

# A crawl's finish_reason (Scrapy's, or one tweetform sets when it closes the spider) -> status.
FINISH_REASONS: dict[str, int] = {
    "finished": DONE,
    "no_usable_credentials": NO_CREDENTIALS,
    "cancelled": CANCELLED,
    "budget_exhausted": BUDGET_EXHAUSTED,
    "shutdown": INTERRUPTED,
    "no_usable_proxies": UNREACHABLE,  # TWEETFORM_PROXY_CHECK_AT_START found no working proxy
    # the filtered stream (tweetform.stream.client): another connection holds the app's one, no rules, a bad request
    "stream_connection_limit": BAD_INPUT,
    "stream_no_rules": BAD_INPUT,
    "stream_refused": BAD_INPUT,
}

# A job's final state (distributed job state, manifest) -> status, for ``push --wait``, ``wait``, ``collect``.
JOB_STATES: dict[str, int] = {
    "done": DONE,
    "finished": DONE,
    "failed": PAGES_FAILED,
    "pages_failed": PAGES_FAILED,
    "no_credentials": NO_CREDENTIALS,
    "no_usable_credentials": NO_CREDENTIALS,
    "cancelled": CANCELLED,
    "budget_exhausted": BUDGET_EXHAUSTED,
    "budget": BUDGET_EXHAUSTED,  # the state layer's name (tweetform.state.base.BUDGET)
}


def for_job_state(state: str, pages_failed: int = 0) -> int:
    """The status for a job that ended in ``state`` (unknown states are errors)."""
    code = JOB_STATES.get(state, ERROR)
    if code == DONE and pages_failed:
        return PAGES_FAILED
    return code


def for_crawl(finish_reason: str | None, stats: Mapping[str, Any]) -> int:
    """The status of a finished crawl, from its finish_reason and stats.

    Pages that failed for good make a "finished" crawl PAGES_FAILED, or
    UNREACHABLE when the API never answered at all (no response downloaded)."""
    if finish_reason is None:
        return ERROR
    code = FINISH_REASONS.get(finish_reason)
    if code is None:
        # CLOSESPIDER_* limits (item count, page count, timeout) are asked for: not failures; an error count is
        code = DONE if finish_reason.startswith("closespider_") and finish_reason != "closespider_errorcount" else ERROR
    failed = int(stats.get("tweetform/pages/failed", 0) or 0)
    if code == DONE and stats.get("tweetform/items/not_written"):
        return ERROR  # a page came back but could not be written (see the log)
    if code == DONE and failed:
        return UNREACHABLE if not stats.get("downloader/response_count") else PAGES_FAILED
    return code


def for_crawlers(crawlers: list[Any], *, bootstrap_failed: bool = False, worker: bool = False) -> int:
    """The status of a ``scrapy crawl`` or ``scrapy worker`` process from its crawlers' stats.

    A worker serves many jobs until it is stopped: being stopped (``shutdown``)
    is its normal end, and pages that failed for good belong to their jobs'
    states (``scrapy wait``), not to the worker's status."""
    if bootstrap_failed:
        return ERROR
    codes = []
    for crawler in crawlers:
        stats = crawler.stats.get_stats() if crawler.stats is not None else {}
        code = for_crawl(stats.get("finish_reason"), stats)
        if worker and code in (INTERRUPTED, PAGES_FAILED, UNREACHABLE):
            code = DONE
        codes.append(code)
    # the most telling status wins: credentials, then reachability, then the rest
    for code in (ERROR, BAD_INPUT, NO_CREDENTIALS, UNREACHABLE, BUDGET_EXHAUSTED, CANCELLED, PAGES_FAILED, INTERRUPTED):
        if code in codes:
            return code
    return DONE
