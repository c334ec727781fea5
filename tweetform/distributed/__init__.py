"""Moved: the Redis backend lives in :mod:`tweetform.state.redis`.

Kept so ``tweetform.distributed.serializer`` (scrapy-redis's
``SCHEDULER_SERIALIZER`` path in older settings files) still imports.
"""
