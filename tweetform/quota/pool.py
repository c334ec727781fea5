"""The one place that decides which credential sends a request.

:meth:`CredentialPool.choose` is called for every attempt. It skips retired
credentials (the API rejected them) and credentials of the wrong kind for the
endpoint (full-archive search is app-only), then rotates over the rest.
"""

from __future__ import annotations

import itertools
import logging

from tweetform.api.endpoints import Endpoint
from tweetform.credentials import Credential

logger = logging.getLogger(__name__)


class NoCredentialError(RuntimeError):
    """No credential left that may call an endpoint."""


class CredentialPool:
    def __init__(self, credentials: list[Credential]) -> None:
        self.credentials = list(credentials)
        self.retired: dict[str, str] = {}  # alias -> reason
        self._turn = itertools.count()

    def usable(self, endpoint: Endpoint | None = None) -> list[Credential]:
        out = [c for c in self.credentials if c.alias not in self.retired]
        if endpoint is not None and endpoint.app_only:
            out = [c for c in out if c.kind == "app" or c.app_key]
        return out

    def choose(self, endpoint: Endpoint) -> Credential:
        candidates = self.usable(endpoint)
        if not candidates:
            raise NoCredentialError(f"no usable credential left for {endpoint.key}")
        return candidates[next(self._turn) % len(candidates)]

    def retire(self, alias: str, reason: str) -> bool:
        """Take a credential out of rotation; True the first time."""
        if alias in self.retired:
            return False
        self.retired[alias] = reason
        logger.error("credential %r taken out of rotation: %s", alias, reason)
        return True

    def get(self, alias: str) -> Credential | None:
        return next((c for c in self.credentials if c.alias == alias), None)
