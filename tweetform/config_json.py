"""tweetf0rm's ``config.json`` read whole (``TWEETFORM_CREDENTIALS_FILE`` pointing at it).

Its ``apikeys`` are credentials (``tweetform.credentials``); the rest are settings, each taken
only when the setting it stands for is not set in ``settings_local.py`` or the environment:

* ``redis_config`` ``{host, port, db, password}`` → ``REDIS_URL`` (``redis://:password@host:port/db``;
  an empty ``{}`` configures nothing);
* ``output`` → ``TWEETFORM_OUTPUT_DIR`` (a relative path is relative to the file's directory);
* ``verbose`` → ``LOG_LEVEL`` ``DEBUG`` when true.

A value of the wrong type or out of range is one line naming the file and the field; the Redis
password is never shown (nor is any value of ``redis_config``'s password).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

#: the settings a config.json may stand for, by its field
FIELDS = {"redis_config": "REDIS_URL", "output": "TWEETFORM_OUTPUT_DIR", "verbose": "LOG_LEVEL"}
REDIS_KEYS = ("host", "port", "db", "password")
#: what tweetf0rm's own examples write ("True") and JSON's booleans
VERBOSE = {True: True, False: False, "True": True, "true": True, "False": False, "false": False}


class ConfigJsonError(ValueError):
    """A config.json field tweetform cannot use; the message never shows the password."""


def read_config(path: str | Path) -> dict[str, Any]:
    """The file's JSON object, or {} when it is unreadable or not an object (the credentials loader
    reports those, with the commands that need credentials)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def settings_from_config(path: str | Path) -> dict[str, Any]:
    """The settings tweetf0rm's config.json at ``path`` stands for (ConfigJsonError on a bad field)."""
    data = read_config(path)
    where = str(path)
    found: dict[str, Any] = {}
    if data.get("redis_config") not in (None, {}):  # {}: nothing configured (tweetf0rm's files often carry it empty)
        found["REDIS_URL"] = redis_url(data["redis_config"], where)
    if data.get("output") is not None:
        output = data["output"]
        if not isinstance(output, str) or not output.strip():
            raise ConfigJsonError(f"{where}: output must be a directory path (a string), not {_kind(output)}")
        found["TWEETFORM_OUTPUT_DIR"] = str(Path(path).resolve().parent / output)  # an absolute output stays itself
    if data.get("verbose") is not None:
        verbose = data["verbose"]
        if not isinstance(verbose, (bool, str)) or verbose not in VERBOSE:
            raise ConfigJsonError(f"{where}: verbose must be true or false (or \"True\"/\"False\"), not {str(verbose)[:20]!r}")
        if VERBOSE[verbose]:
            found["LOG_LEVEL"] = "DEBUG"
    return found


def redis_url(config: Any, where: str) -> str:
    """``redis_config`` as a redis:// URL; host defaults to localhost, port to 6379, db to 0."""
    if not isinstance(config, dict):
        raise ConfigJsonError(f"{where}: redis_config must be an object with host, port, db and password, not {_kind(config)}")
    unknown = sorted(str(k) for k in config if k not in REDIS_KEYS)
    if unknown:
        raise ConfigJsonError(f"{where}: redis_config has an unknown key {unknown[0][:40]!r} (it takes host, port, db, password)")
    host = config.get("host") if config.get("host") is not None else "localhost"
    if not isinstance(host, str) or not host.strip() or any(c.isspace() or c in "/@?#" for c in host):
        raise ConfigJsonError(f"{where}: redis_config.host must be a host name or address, not {str(host)[:60]!r}")
    port = _whole(config.get("port", 6379), "port", where, 1, 65535)
    db = _whole(config.get("db", 0), "db", where, 0, 1 << 31)
    password = config.get("password")
    if password is not None and not isinstance(password, str):
        raise ConfigJsonError(f"{where}: redis_config.password must be a string, not {_kind(password)}")
    auth = f":{quote(password, safe='')}@" if password else ""
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host  # an IPv6 address
    return f"redis://{auth}{host}:{port}/{db}"


def _whole(value: Any, name: str, where: str, low: int, high: int) -> int:
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigJsonError(f"{where}: redis_config.{name} must be a whole number from {low} to {high:,}, not {str(value)[:40]!r}")
    return value


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", bool: "a boolean", int: "a number", float: "a number", str: "a string"}.get(
        type(value), type(value).__name__)
