"""The embedded backend, for one process: in memory, or SQLite in Scrapy's ``JOBDIR``."""

from tweetform.state.local.memory import MemoryJobStore

__all__ = ["MemoryJobStore"]
