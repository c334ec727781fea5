"""tweetform's add-on: turns on distributed mode when ``REDIS_URL`` is set.

Listed in ``ADDONS`` by tweetform/settings.py. It runs after every other
settings source (settings_local.py, the environment, ``-s`` options), so
``-s REDIS_URL=redis://…`` on one command switches that process over.
"""

from __future__ import annotations

from scrapy.settings import Settings


class DistributedAddon:
    def update_settings(self, settings: Settings) -> None:
        collect = settings.getbool("TWEETFORM_COLLECT")
        if collect and not settings.get("REDIS_URL"):
            from tweetform.commands.errors import fail

            fail("TWEETFORM_COLLECT needs REDIS_URL: pages go through Redis to `scrapy collect`")
        if not settings.get("REDIS_URL"):
            return
        settings.set("SCHEDULER", "tweetform.distributed.scheduler.RedisScheduler", "addon")
        settings.set("DUPEFILTER_CLASS", "scrapy.dupefilters.BaseDupeFilter", "addon")  # the scheduler filters per job
        # into whatever EXTENSIONS the project set (a plain set() at addon priority would lose to it)
        from tweetform.distributed.node import WorkerNode

        settings.set_in_component_priority_dict("EXTENSIONS", WorkerNode, 100)
        if collect:  # pages go to `scrapy collect` through Redis: this process writes no bucket file
            from tweetform.collect.pipeline import CollectPipeline
            from tweetform.pipelines.buckets import BucketPipeline

            settings.set_in_component_priority_dict("ITEM_PIPELINES", BucketPipeline, None)
            settings.set_in_component_priority_dict("ITEM_PIPELINES", CollectPipeline, 500)
