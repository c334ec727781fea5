"""tweetform's add-on: switches on the Redis backend of the state layer when ``REDIS_URL`` is set,
and holds what the crawler's components share (:class:`~tweetform.crawler_state.CrawlerState`).

Listed in ``ADDONS`` by tweetform/settings.py. It runs after every other
settings source (settings_local.py, the environment, ``-s`` options), so
``-s REDIS_URL=redis://…`` on one command switches that process over. The job
store and quota book follow the same setting (:mod:`tweetform.state`).
"""

from __future__ import annotations

import logging

from scrapy.settings import SETTINGS_PRIORITIES, Settings

from tweetform.config import uses_redis
from tweetform.crawler_state import CrawlerState
from tweetform.credentials import load_credentials
from tweetform.proxies.config import direct_lane_name, ip_lanes, load_proxy_list
from tweetform.quota.pool import CredentialPool
from tweetform.state.redis.node import WorkerNode

logger = logging.getLogger(__name__)


class DistributedAddon(CrawlerState):
    """tweetform's add-on: one per crawler, it also holds what the crawler's components share (CrawlerState)."""

    def make_pool(self) -> CredentialPool:
        s = self.crawler.settings
        # X credentials, Bluesky accounts (for sessions) and Bluesky's per-IP lanes
        creds = load_credentials(s, "all") + ip_lanes(load_proxy_list(s), direct_lane_name(s))
        return CredentialPool(creds, app_lanes_for_users=s.getbool("TWEETFORM_APP_LANES_FOR_USERS"))

    def update_settings(self, settings: Settings) -> None:
        collect = settings.getbool("TWEETFORM_COLLECT")
        if collect and not uses_redis(settings):
            from tweetform.commands.errors import fail

            fail("TWEETFORM_COLLECT needs REDIS_URL: pages go through Redis to `scrapy collect`")
        if not uses_redis(settings):
            return
        if settings.get("JOBDIR"):  # distributed jobs keep their state (and resume) in Redis
            logger.warning("JOBDIR is ignored with REDIS_URL: the job's state is kept in Redis")
            settings.set("JOBDIR", None, settings.getpriority("JOBDIR"))
        # over the local backend's choice in settings.py (project priority beats "addon")
        for name, value in (("SCHEDULER", "tweetform.state.redis.scheduler.RedisScheduler"),
                            ("DUPEFILTER_CLASS", "tweetform.state.redis.dupefilter.JobDupeFilter")):
            settings.set(name, value, priority=max(settings.getpriority(name) or 0, SETTINGS_PRIORITIES["addon"]))
        # into whatever EXTENSIONS the project set (a plain set() at addon priority would lose to it)
        settings.set_in_component_priority_dict("EXTENSIONS", WorkerNode, 100)
        if collect:  # pages go to `scrapy collect` through Redis: this process writes no bucket file
            from tweetform.collect.pipeline import CollectMiddleware, CollectPipeline
            from tweetform.pipelines.buckets import BucketPipeline

            settings.set_in_component_priority_dict("ITEM_PIPELINES", BucketPipeline, None)
            settings.set_in_component_priority_dict("ITEM_PIPELINES", CollectPipeline, 500)
            # outermost: a page is in Redis before its callback ends (and acknowledges its request)
            settings.set_in_component_priority_dict("SPIDER_MIDDLEWARES", CollectMiddleware, 10)
