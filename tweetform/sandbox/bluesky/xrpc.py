"""XRPC plumbing: error bodies and query parameters as the AppView and PDS check them."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from multidict import MultiMapping

from ..errors import ApiError
from .. import paging
from . import ids

#: status -> error name xrpc-server gives an error without its own
STATUS_NAMES = {400: "InvalidRequest", 401: "AuthMissing", 403: "Forbidden", 429: "RateLimitExceeded",
                500: "InternalServerError", 501: "MethodNotImplemented", 502: "UpstreamFailure",
                503: "NotEnoughResources", 504: "UpstreamTimeout"}
STATUS_TEXT = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 429: "Rate Limit Exceeded",
               500: "Internal Server Error", 501: "Method Not Implemented", 502: "Bad Gateway",
               503: "Service Unavailable", 504: "Gateway Timeout"}


class XrpcError(ApiError):
    """An XRPC error answer, with the headers it carries (a 429's ratelimit-*)."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, body)
        self.headers = headers or {}


def error(status: int, message: str | None = None, name: str | None = None,
          headers: dict[str, str] | None = None) -> XrpcError:
    """``{"error": <Name>, "message": <text>}``; the message defaults to the status text (xrpc-server)."""
    return XrpcError(status, {"error": name or STATUS_NAMES.get(status, "InternalServerError"),
                              "message": message or STATUS_TEXT.get(status, "Error")}, headers)


def invalid(message: str, name: str = "InvalidRequest") -> XrpcError:
    return error(400, message, name)


class Query:
    """Typed XRPC query parameters (arrays repeat the key); bad ones raise InvalidRequest."""

    def __init__(self, values: MultiMapping[str]) -> None:
        self.values = values

    def str(self, name: str, *, required: bool = False) -> str | None:
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise invalid(f'Params must have the property "{name}"')
            return None
        return value

    def required(self, name: str) -> str:
        return self.str(name, required=True)  # type: ignore[return-value]

    def int(self, name: str, default: int, lo: int, hi: int) -> int:
        raw = self.str(name)
        if raw is None:
            return default
        if not (raw.isascii() and raw.lstrip("-").isdigit()):
            raise invalid(f"{name} must be an integer")
        value = int(raw)
        if value < lo:
            raise invalid(f"{name} can not be less than {lo}")
        if value > hi:
            raise invalid(f"{name} can not be greater than {hi}")
        return value

    def bool(self, name: str, default: bool = False) -> bool:
        raw = self.str(name)
        if raw is None:
            return default
        if raw not in ("true", "false"):
            raise invalid(f"{name} must be a boolean")
        return raw == "true"

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        raw = self.str(name)
        if raw is None:
            return default
        if raw not in allowed:
            raise invalid(f"{name} must be one of ({','.join(allowed)})")
        return raw

    def array(self, name: str, most: int, *, required: bool = True) -> list[str]:
        items = [v for v in self.values.getall(name, []) if v != ""]
        if not items and required:
            raise invalid(f'Params must have the property "{name}"')
        if len(items) > most:
            raise invalid(f"{name} must not have more than {most} elements")
        return items

    def actor(self, name: str = "actor") -> str:
        value = self.required(name)
        check_actor(value, name)
        return value

    def at_uri(self, name: str = "uri") -> str:
        value = self.required(name)
        check_at_uri(value, name)
        return value

    def datetime(self, name: str) -> datetime | None:
        raw = self.str(name)
        if raw is None:
            return None
        try:
            value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise invalid(f"{name} must be an valid atproto datetime (both RFC-3339 and ISO-8601)") from None
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)

    def offset(self, salt: object) -> int:
        """Where an opaque cursor points (0 without one)."""
        raw = self.str("cursor")
        if raw is None:
            return 0
        offset = paging.decode_token(raw, salt)
        if offset is None:
            raise invalid("Malformed cursor")
        return offset


def check_actor(value: str, where: str) -> None:
    if not (ids.is_did(value) or ids.is_handle(value)):
        raise invalid(f"{where} must be a valid did or a handle")


def check_at_uri(value: str, where: str) -> None:
    if ids.parse_at_uri(value) is None:
        raise invalid(f"{where} must be a valid at-uri")


def page(items: list, q: Query, size: int, salt: object) -> tuple[list, str | None]:
    """One page of ``items`` from the cursor (some come back short), and the next cursor or None."""
    chunk, nxt = paging.page(items, q.offset(salt), size, salt)
    return chunk, (paging.encode_token(nxt, salt) if nxt is not None else None)
