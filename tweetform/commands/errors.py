"""How every tweetform command reports a mistake: one line on stderr and an exit status.

Bad input exits 2 (:data:`tweetform.exitcodes.BAD_INPUT`); a Redis that cannot
be reached exits :data:`tweetform.exitcodes.UNREACHABLE`, naming the URL
without its password, instead of redis-py's traceback.
"""

from __future__ import annotations

import argparse
import functools
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator, NoReturn, TypeVar
from urllib.parse import urlsplit

from tweetform.config import redis_url
from tweetform import exitcodes

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = exitcodes.BAD_INPUT) -> NoReturn:
    print(f"tweetform: {message}", file=sys.stderr)
    sys.exit(code)


def one_line_errors(parser: argparse.ArgumentParser) -> None:
    """A bad option value (argparse's error, or Scrapy's UsageError) is one line and exit status 2,
    not the usage text: every tweetform command calls this from ``add_options``."""
    command = " ".join((parser.usage or "scrapy").split()[:2])

    def error(message: str) -> NoReturn:
        fail(f"{command}: {message}")

    parser.error = error  # type: ignore[method-assign]


def number(kind: type, low: float | None = None, high: float | None = None, *, above: bool = False) -> Callable[[str], Any]:
    """An argparse ``type`` reading an int or float in a range (``above``: more than ``low``, not equal)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {'a whole number' if kind is int else 'a number'}, not {text[:40]!r}") from None
        too_low = low is not None and (value <= low if above else value < low)
        if value != value or too_low or (high is not None and value > high):
            bound = (f"from {low:g} to {high:g}" if low is not None and high is not None
                     else f"more than {low:g}" if above else f"at least {low:g}" if low is not None else f"at most {high:g}")
            raise argparse.ArgumentTypeError(f"must be {bound}, not {text[:40]}")
        return value

    return parse


def redact_url(url: str) -> str:
    """A service URL as it may be shown: ``redis://user:***@host:port/db`` (no password, no query)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(an unparsable URL)"
    if ":" in host:
        host = f"[{host}]"
    user = parts.username or ""
    auth = f"{user}:***@" if parts.password is not None else (f"{user}@" if user else "")
    return f"{parts.scheme}://{auth}{host}{port}{parts.path}"


def redis_problem(exc: BaseException, url: str) -> str:
    """One line for a Redis error; redis-py's text is kept only when it cannot hold the password."""
    import redis

    shown = redact_url(url)
    if isinstance(exc, redis.AuthenticationError):
        if "***@" not in shown:
            return f"Redis at {shown} needs a password: give it in REDIS_URL (AuthenticationError)"
        return f"Redis at {shown} refused the password or user name (AuthenticationError)"
    if isinstance(exc, redis.TimeoutError):
        return f"Redis at {shown} did not answer in time (TimeoutError)"
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password and password in detail:
        detail = ""
    return f"Redis at {shown} is unreachable ({type(exc).__name__}{': ' + detail if detail else ''})"


@contextmanager
def redis_errors(settings: Any) -> Iterator[None]:
    """Turn an unreachable or refusing Redis into one line and exit UNREACHABLE."""
    import redis

    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:  # AuthenticationError is a ConnectionError
        fail(redis_problem(exc, redis_url(settings)), exitcodes.UNREACHABLE)
    except redis.ResponseError as exc:
        # NOAUTH / WRONGPASS arrive as replies on some servers: still a configuration problem, not a bug
        text = str(exc)
        if text.startswith(("NOAUTH", "WRONGPASS", "invalid password", "invalid username")):
            fail(redis_problem(redis.AuthenticationError(), redis_url(settings)), exitcodes.UNREACHABLE)
        raise


def with_redis_errors(run: F) -> F:
    """Decorate a command's ``run``: Redis errors become one line (see :func:`redis_errors`)."""

    @functools.wraps(run)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with redis_errors(self.settings):
            return run(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def require_redis(settings: Any) -> None:
    """Ping REDIS_URL once before starting work that needs it (a worker, a distributed crawl)."""
    from scrapy_redis.connection import get_redis_from_settings

    with redis_errors(settings):
        client = get_redis_from_settings(settings)  # REDIS_PARAMS too (TLS, timeouts), as the workers connect
        try:
            client.ping()
        finally:
            client.close()
