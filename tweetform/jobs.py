"""Job state moved to :mod:`tweetform.state` (interface in ``state/base.py``, backends
in ``state/local/`` and the Redis backend). Kept so existing imports go on working."""

from tweetform.state.base import JobStore
from tweetform.state.local.memory import MemoryJobStore, NetworkLevels

LocalJobStore = MemoryJobStore

__all__ = ["JobStore", "LocalJobStore", "MemoryJobStore", "NetworkLevels"]
