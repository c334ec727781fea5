"""Where settings come from: defaults, then ``settings_local.py``, then the environment.

``tweetform/settings.py`` holds every default and calls :func:`apply_overrides`
last, so a researcher's ``settings_local.py`` (git-ignored, beside ``scrapy.cfg``)
and environment variables win over the defaults without editing the package.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from collections.abc import Mapping
from typing import Any, MutableMapping, NoReturn

from scrapy.settings import SETTINGS_PRIORITIES

from tweetform.config_json import ConfigJsonError, settings_from_config

#: Names an environment variable may override besides the TWEETFORM_* ones.
FOREIGN_PREFIXES = ("REDIS_", "ROTATING_PROXY_")
LOCAL_SETTINGS_ENV = "TWEETFORM_SETTINGS_LOCAL"


def project_root() -> Path:
    """The directory holding ``scrapy.cfg`` (the parent of the package)."""
    return Path(__file__).resolve().parent.parent


def local_settings_path() -> Path | None:
    """``$TWEETFORM_SETTINGS_LOCAL``, else ``./settings_local.py``, else the one beside scrapy.cfg."""
    explicit = os.environ.get(LOCAL_SETTINGS_ENV)
    if explicit:
        return Path(explicit)
    for candidate in (Path.cwd() / "settings_local.py", project_root() / "settings_local.py"):
        if candidate.is_file():
            return candidate
    return None


def redis_url(settings: Any) -> str:
    """The Redis that the processes of a distributed crawl share, "" for none (one process, local state).
    The one place ``REDIS_URL`` is read, besides the client factory (tweetform.state.redis.connection)."""
    return str(settings.get("REDIS_URL") or "")


def uses_redis(settings: Any) -> bool:
    """Redis backend (shared job state, queue and quota) or local state."""
    return bool(redis_url(settings))


class SettingsError(ValueError):
    """A setting of the wrong type or a settings_local.py that cannot run; the message never shows a value."""


def stop(message: str) -> NoReturn:
    """Settings are read before any command runs: one line and exit status 2 (as every bad input)."""
    print(f"tweetform: {message}", file=sys.stderr)
    raise SystemExit(2)


def load_local_settings(path: Path) -> dict[str, Any]:
    """Upper-case names of a settings_local.py file, executed as a module."""
    spec = importlib.util.spec_from_file_location("tweetform_settings_local", path)
    if spec is None or spec.loader is None:
        raise SettingsError(f"cannot load local settings from {path}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except OSError as exc:
        raise SettingsError(f"{path}: cannot be read ({exc.strerror})") from None
    except Exception as exc:  # noqa: BLE001 - whatever the file does wrong, one line (no values: they may be secrets)
        line = getattr(exc, "lineno", None) or _line_in(exc, path)
        raise SettingsError(f"{path}{f' line {line}' if line else ''}: {type(exc).__name__} while loading local settings") from None
    return {k: v for k, v in vars(module).items() if k.isupper()}


def _line_in(exc: BaseException, path: Path) -> int | None:
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename) == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _kind(value: Any) -> str:
    return {dict: "a dict", list: "a list", tuple: "a tuple", bool: "a boolean", int: "an integer", float: "a number",
            str: "a string"}.get(type(value), type(value).__name__)


# Scrapy's getbool spellings (BaseSettings.getbool): any other string makes Scrapy raise when it reads the setting
BOOL_SPELLINGS = {"1": True, "0": False, "True": True, "true": True, "False": False, "false": False}


def type_problem(value: Any, default: Any) -> str | None:
    """Why ``value`` cannot stand for a setting whose default is ``default`` (None: it can).

    Booleans, integers and numbers are accepted only in forms Scrapy's ``getbool``/``getint``/``getfloat``
    read (a value accepted here never makes Scrapy raise later), and a little stricter: 2 or 0.0 is no
    boolean, 2.5 no integer, True no number."""
    if default is None or value is None:
        return None
    if isinstance(default, bool):
        ok = isinstance(value, bool) or (type(value) is int and value in (0, 1)) or (isinstance(value, str) and value in BOOL_SPELLINGS)
        return None if ok else f"must be True or False, not {_kind(value)}"
    if isinstance(default, int):
        if isinstance(value, float) and value.is_integer():
            return None
        if isinstance(value, float):
            return f"must be an integer, not {value}"
        return None if _reads(int, value) else f"must be an integer, not {_kind(value)}"
    if isinstance(default, float):
        return None if _reads(float, value) else f"must be a number, not {_kind(value)}"
    if isinstance(default, str):
        return None if isinstance(value, (str, int, float, os.PathLike)) and not isinstance(value, bool) else f"must be a string, not {_kind(value)}"
    if isinstance(default, (list, tuple)):
        return None if isinstance(value, (list, tuple, str)) else f"must be a list, not {_kind(value)}"
    if isinstance(default, dict):
        # a mapping: Scrapy turns -s NAME='{...}' of a component setting (ITEM_PIPELINES, …) into BaseSettings
        return None if isinstance(value, (Mapping, str)) else f"must be a dict, not {_kind(value)}"
    return None


def _reads(kind: type, value: Any) -> bool:
    """``kind(value)`` works, as Scrapy's getint/getfloat call it; a boolean is never a number here."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return False
    try:
        kind(value)
    except (ValueError, OverflowError):
        return False
    return True


#: numeric settings' ranges: (lowest, highest, lowest itself allowed); None: no bound. A value out of range
#: is bad input before anything starts, like a value of the wrong type.
RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    "CONCURRENT_REQUESTS": (1, None, True), "CONCURRENT_REQUESTS_PER_DOMAIN": (1, None, True),
    "CONCURRENT_ITEMS": (1, None, True), "DOWNLOAD_TIMEOUT": (0, None, False), "RETRY_TIMES": (0, None, True),
    "URLLENGTH_LIMIT": (1, None, True), "TWEETFORM_BLUESKY_RATE": (2, None, True),  # 1: no pace keeps 1 in every 5 min
    "TWEETFORM_QUOTA_RESET_MARGIN": (-3600, 3600, True),  # negative: send before the reset (tests make real 429s)
    "TWEETFORM_RETRY_BACKOFF": (0, None, True), "TWEETFORM_RETRY_BACKOFF_MAX": (0, None, True),
    "ROTATING_PROXY_BACKOFF_BASE": (0, None, True), "ROTATING_PROXY_BACKOFF_CAP": (0, None, True),
    "ROTATING_PROXY_PAGE_RETRY_TIMES": (1, None, True), "ROTATING_PROXY_LOGSTATS_INTERVAL": (0, None, False),
    "TWEETFORM_PROXY_CHECK_TIMEOUT": (0, None, False), "TWEETFORM_PROGRESS_INTERVAL": (0, None, False),
    "TWEETFORM_RATE_WINDOW": (0, None, False), "TWEETFORM_BUDGET_USD": (0, None, False),  # or "unlimited" (no budget)
    "TWEETFORM_STREAM_READ_TIMEOUT": (0, None, False), "TWEETFORM_HEARTBEAT": (0, None, False),
    "TWEETFORM_HEARTBEAT_TTL": (0, None, False), "TWEETFORM_MAX_DELIVERIES": (1, None, True),
    "TWEETFORM_DEAD_LETTER_MAX": (1, None, True), "TWEETFORM_JOB_STATE_TTL": (0, None, False),
    "TWEETFORM_COLLECT_MAX_BYTES": (1, None, True), "TWEETFORM_COLLECT_LOCK_TTL": (0, None, False),
}


def range_problem(name: str, value: Any) -> str | None:
    """Why a numeric setting's value (of the right type) is out of its range (None: it is not)."""
    if name not in RANGES or isinstance(value, bool) or not _reads(float, value):
        return None
    low, high, low_ok = RANGES[name]
    number = float(value)
    if number != number or (low is not None and (number < low or (number == low and not low_ok))) or (
            high is not None and number > high):
        bound = (f"from {low:g} to {high:g}" if high is not None else f"at least {low:g}" if low_ok else f"more than {low:g}")
        return f"must be {bound}, not {str(value).strip()[:40]}"
    return None


def check_types(values: MutableMapping[str, Any], defaults: MutableMapping[str, Any], source: str) -> None:
    """Refuse, by name, a value whose type cannot stand for its setting's default."""
    for name, value in values.items():
        if name in defaults:
            problem = type_problem(value, defaults[name]) or range_problem(name, value)
            if problem:
                raise SettingsError(f"{source}: {name} {problem}")


def parse_env_value(raw: str, default: Any) -> Any:
    """Coerce an environment string to the type of the setting's default."""
    if isinstance(default, bool):
        if raw not in BOOL_SPELLINGS:
            raise ValueError("not a boolean")
        return BOOL_SPELLINGS[raw]
    if isinstance(default, int) and not isinstance(default, bool):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, (list, dict, tuple)):
        stripped = raw.strip()
        if stripped.startswith(("[", "{")):
            return json.loads(stripped)
        return [item.strip() for item in stripped.split(",") if item.strip()]
    return raw


def env_overrides(defaults: MutableMapping[str, Any], environ: MutableMapping[str, str] | None = None) -> dict[str, Any]:
    environ = os.environ if environ is None else environ
    found: dict[str, Any] = {}
    for name, raw in environ.items():
        if name == LOCAL_SETTINGS_ENV:
            continue
        if name.startswith("TWEETFORM_") or name.startswith(FOREIGN_PREFIXES) and name in defaults:
            try:
                found[name] = parse_env_value(raw, defaults.get(name))
            except (ValueError, json.JSONDecodeError) as exc:
                # One line, naming the variable only: the value may be a secret.
                problem = type_problem("not a value", defaults.get(name)) or "is not valid"
                raise SettingsError(f"environment variable {name} {problem.replace(', not a string', '')} ({type(exc).__name__})") from None
            problem = range_problem(name, raw)  # numbers only: no secret among them
            if problem:
                raise SettingsError(f"environment variable {name} {problem}")
    return found


def apply_overrides(namespace: MutableMapping[str, Any]) -> None:
    """Update a settings module namespace in place: local file first, environment last; then what
    tweetf0rm's config.json (``TWEETFORM_CREDENTIALS_FILE``) stands for, where neither set it."""
    try:
        given: dict[str, Any] = {}
        path = local_settings_path()
        if path is not None:
            local = load_local_settings(path)
            check_types(local, namespace, str(path))
            namespace.update(local)
            given.update(local)
        env = env_overrides(namespace)
        namespace.update(env)
        given.update(env)
        config_file = namespace.get("TWEETFORM_CREDENTIALS_FILE")
        if config_file and isinstance(config_file, (str, os.PathLike)):
            for name, value in settings_from_config(config_file).items():
                if not given.get(name):  # REDIS_URL, TWEETFORM_OUTPUT_DIR, LOG_LEVEL set (not empty) win
                    namespace[name] = value
    except (SettingsError, ConfigJsonError) as exc:
        stop(str(exc))


def command_line_problem(settings: Any, defaults: Mapping[str, Any]) -> str | None:
    """A ``-s NAME=VALUE`` whose value cannot stand for the setting's default (``defaults``: the names of
    tweetform/settings.py), in one line."""
    for name, default in defaults.items():
        if name.isupper() and settings.getpriority(name) == SETTINGS_PRIORITIES["cmdline"]:
            value = settings.get(name)
            problem = type_problem(value, default) or range_problem(name, value)
            if problem:  # only number and boolean settings can be refused here: their values are no secrets
                return f"-s {name}={str(value)[:40]}: {problem.split(', not ')[0]}"
    return None
