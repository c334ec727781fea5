"""The spider middlewares of a crawl, in the order Scrapy builds them (engine side first).

CallbackErrorMiddleware must wrap every other spider middleware, so that an exception
from any of them becomes a failed page; in collect mode CollectMiddleware alone wraps
it, so that the failed-page records it makes are handed to Redis inside the chain too.
"""

from __future__ import annotations

from scrapy.settings import Settings
from scrapy.utils.conf import build_component_list
from scrapy.utils.misc import load_object

from tweetform.addons import DistributedAddon

CALLBACK_ERRORS = "tweetform.middlewares.callback_errors.CallbackErrorMiddleware"
COLLECT = "tweetform.collect.pipeline.CollectMiddleware"


def spider_middlewares(**overrides: object) -> list[str]:
    settings = Settings()
    settings.setmodule("tweetform.settings", priority="project")
    settings.setdict(overrides, priority="cmdline")
    DistributedAddon(None).update_settings(settings)  # the add-on's settings part (no crawler needed)
    names = []
    for component in build_component_list(settings.getwithbase("SPIDER_MIDDLEWARES")):
        cls = load_object(component) if isinstance(component, str) else component
        names.append(f"{cls.__module__}.{cls.__qualname__}")
    return names


def test_callback_errors_is_the_outermost_spider_middleware() -> None:
    names = spider_middlewares()
    assert names[0] == CALLBACK_ERRORS, names
    assert "scrapy.spidermiddlewares.start.StartSpiderMiddleware" in names[1:]


def test_in_collect_mode_only_the_collect_middleware_wraps_callback_errors() -> None:
    names = spider_middlewares(REDIS_URL="redis://127.0.0.1:1/0", TWEETFORM_COLLECT=True)
    assert names[:2] == [COLLECT, CALLBACK_ERRORS], names
