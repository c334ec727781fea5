"""Where settings come from: defaults, then ``settings_local.py``, then the environment.

``tweetform/settings.py`` holds every default and calls :func:`apply_overrides`
last, so a researcher's ``settings_local.py`` (git-ignored, beside ``scrapy.cfg``)
and environment variables win over the defaults without editing the package.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any, MutableMapping

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


def load_local_settings(path: Path) -> dict[str, Any]:
    """Upper-case names of a settings_local.py file, executed as a module."""
    spec = importlib.util.spec_from_file_location("tweetform_settings_local", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load local settings from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {k: v for k, v in vars(module).items() if k.isupper()}


def parse_env_value(raw: str, default: Any) -> Any:
    """Coerce an environment string to the type of the setting's default."""
    if isinstance(default, bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
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
                raise SystemExit(f"tweetform: environment variable {name} is not valid: {type(exc).__name__}") from None
    return found


def apply_overrides(namespace: MutableMapping[str, Any]) -> None:
    """Update a settings module namespace in place: local file first, environment last."""
    path = local_settings_path()
    if path is not None:
        namespace.update(load_local_settings(path))
    namespace.update(env_overrides(namespace))
