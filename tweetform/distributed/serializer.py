"""Moved to :mod:`tweetform.state.redis.serializer` (re-exported for settings that name this path)."""

from tweetform.state.redis.serializer import dumps, loads

__all__ = ["dumps", "loads"]
