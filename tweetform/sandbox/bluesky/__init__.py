"""The sandbox's Bluesky face: the same synthetic world over the AT Protocol's XRPC.

Served under ``/xrpc/`` on the sandbox's one port (as the main PDS serves both its own
and the AppView's methods), so ``TWEETFORM_BLUESKY_APPVIEW`` and ``TWEETFORM_BLUESKY_PDS``
can both point at it. :mod:`.ids` maps users and tweets to DIDs, handles and ``at://``
URIs; :mod:`.views` renders them in the lexicons' shapes; :mod:`.endpoints` are the
methods; :mod:`.sessions` the accounts and tokens; :mod:`.face` the HTTP side, its
ground truth (``/_sandbox/truth/bsky/…``) and counters (``/_sandbox/bsky/counters``).
"""

from __future__ import annotations

from .face import BlueskyFace, add_routes

__all__ = ["BlueskyFace", "add_routes"]
