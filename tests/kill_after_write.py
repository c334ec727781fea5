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


class KillAfterRecordPipeline(BucketPipeline):
    """SIGKILLs its process right after the N-th page is in its file AND its record reached Redis, before the page's
    request is acknowledged (tests/test_written_check.py): its request is handed over to another worker, which must
    find the page written."""

    writes = 0

    def _record(self, *args: Any, **kwargs: Any) -> None:
        super()._record(*args, **kwargs)
        KillAfterRecordPipeline.writes += 1
        if KillAfterRecordPipeline.writes >= int(os.environ["TWEETFORM_TEST_KILL_AFTER_WRITES"]):
            if self.outbox is not None:
                self.outbox.flush()  # the record goes now, in a round trip of its own
            os.kill(os.getpid(), signal.SIGKILL)
