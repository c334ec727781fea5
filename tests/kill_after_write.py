"""Test-only: a bucket pipeline that SIGKILLs its own process right after the N-th page
reached its file and before it is recorded anywhere else (the crash window the
one-writer-per-file design must survive). Used by tests/test_longitudinal.py as
``-s ITEM_PIPELINES={"kill_after_write.KillAfterWritePipeline": 500}`` with
``TWEETFORM_TEST_KILL_AFTER_WRITES=N`` in the environment."""

from __future__ import annotations

import os
import signal
from typing import Any

from tweetform.pipelines.buckets import BucketPipeline


class KillAfterWritePipeline(BucketPipeline):
    writes = 0

    def _record(self, *args: Any, **kwargs: Any) -> None:
        KillAfterWritePipeline.writes += 1
        if KillAfterWritePipeline.writes >= int(os.environ["TWEETFORM_TEST_KILL_AFTER_WRITES"]):
            os.kill(os.getpid(), signal.SIGKILL)
        super()._record(*args, **kwargs)
