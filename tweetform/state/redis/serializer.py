"""Requests as JSON in Redis (never pickle): bytes become ``{"__b64": "..."}``.

Used as scrapy-redis's ``SCHEDULER_SERIALIZER`` (a module with ``dumps`` and
``loads``). Callbacks must be spider methods, referred to by name.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from tweetform.requests_safety import strip_credentials


def _encode(obj: Any) -> Any:
    if isinstance(obj, bytes):
        return {"__b64": base64.b64encode(obj).decode()}
    if isinstance(obj, dict):
        return {str(k.decode() if isinstance(k, bytes) else k): _encode(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_encode(v) for v in obj]
    return obj


def _decode(obj: Any) -> Any:
    if isinstance(obj, dict):
        if len(obj) == 1 and "__b64" in obj:
            return base64.b64decode(obj["__b64"])
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    return obj


def dumps(obj: Any) -> str:
    return json.dumps(_encode(strip_credentials(obj)), separators=(",", ":"))  # signed again per attempt


def loads(data: str | bytes) -> Any:
    return _decode(json.loads(data))
