"""Query-parameter parsing with each API version's own error answers."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable, Mapping

from .errors import ApiError, v1_error, v2_invalid


def is_id(raw: str) -> bool:
    """An id as the API accepts it: 1-19 ASCII digits.

    ``str.isdigit`` alone also accepts non-ASCII digits ("²", "１２"), which
    ``int()`` then rejects (``ValueError`` -> a 500 page) or silently maps to
    another id; the API answers such values with a 400.
    """
    return raw.isascii() and raw.isdigit() and len(raw) <= 19


class Params:
    """Read typed query parameters; bad values raise the version's 400 error."""

    def __init__(self, values: Mapping[str, str], version: str) -> None:
        self.values = values
        self.version = version

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self.values.get(name)
        return default if value is None or value == "" else value

    def _bad(self, name: str, value: str, why: str) -> ApiError:
        if self.version == "1.1":
            return v1_error(400, 44, f"{name} parameter is invalid.")
        return v2_invalid(f"The `{name}` query parameter value [{value}] {why}", {name: [value]})

    def int(self, name: str, default: int | None = None, lo: int | None = None, hi: int | None = None) -> int | None:
        """v1.1 clamps counts into range silently; v2 rejects out-of-range values."""
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise self._bad(name, raw, "is not a valid number") from None
        if self.version == "1.1":
            if lo is not None:
                value = max(lo, value)
            if hi is not None:
                value = min(hi, value)
            return value
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise self._bad(name, raw, f"is not between {lo} and {hi}")
        return value

    def id(self, name: str) -> int | None:
        raw = self.get(name)
        if raw is None:
            return None
        if not is_id(raw):  # was raw.isdigit(): "²" passed and crashed int() (500 text page)
            raise self._bad(name, raw, "is not valid")
        return int(raw)

    def bool(self, name: str, default: bool = False) -> bool:
        raw = self.get(name)
        if raw is None:
            return default
        return raw.lower() in ("1", "true", "t", "yes")

    def csv(self, name: str, limit: int | None = None, check: Callable[[str], bool] | None = None) -> list[str]:
        raw = self.get(name)
        if raw is None:
            return []
        items = [s.strip() for s in raw.split(",") if s.strip()]
        if limit is not None and len(items) > limit:
            if self.version == "1.1":
                raise v1_error(400, 18, f"Too many terms specified in query.")
            raise self._bad(name, raw[:60], f"has {len(items)} items; at most {limit} are allowed")
        if check is not None:
            for item in items:
                if not check(item):
                    raise self._bad(name, item, "is not valid")
        return items

    def time(self, name: str) -> datetime | None:
        raw = self.get(name)
        if raw is None:
            return None
        try:
            value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise self._bad(name, raw, "does not match format YYYY-MM-DDTHH:mm:ssZ") from None
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)

    def fields(self, name: str, allowed: frozenset[str]) -> list[str]:
        items = self.csv(name)
        unknown = [f for f in items if f not in allowed]
        if unknown:
            raise v2_invalid(
                f"The `{name}` query parameter value [{unknown[0]}] is not one of [{','.join(sorted(allowed))}]",
                {name: [",".join(items)]},
            )
        return items
