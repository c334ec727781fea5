"""The filtered stream, client side (README "Streaming").

* :mod:`tweetform.stream.app` — which app-only credential the rules and the
  stream use, and its bearer token;
* :mod:`tweetform.stream.rules` — ``GET/POST /2/tweets/search/stream/rules``
  for ``scrapy stream rules …``, with the API's refusals as one line each;
* :mod:`tweetform.stream.client` — the streaming connection: lines as they
  arrive, keep-alives, silence, reconnecting after the API's back-off rules.

The spider that writes what the stream delivers is :mod:`tweetform.spiders.stream`.
"""

STREAM_PATH = "/2/tweets/search/stream"
RULES_PATH = "/2/tweets/search/stream/rules"
MAX_BACKFILL_MINUTES = 5
