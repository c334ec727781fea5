"""Proxies: where they come from, whether they work, which credential goes through which.

* :mod:`tweetform.proxies.config` — proxy lists (``ROTATING_PROXY_LIST``,
  ``ROTATING_PROXY_LIST_PATH``, tweetf0rm's proxy.json), pinning, redaction.
* :mod:`tweetform.proxies.policy` — the ban policy that knows the API.
* :mod:`tweetform.proxies.middlewares` — scrapy-rotating-proxies' middlewares,
  thinly subclassed (pinning, no deprecation warnings, check at start).
* :mod:`tweetform.proxies.check` — ``scrapy proxies check``'s probe.

See docs/proxies.md.
"""
