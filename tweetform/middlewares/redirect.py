"""Scrapy's RedirectMiddleware without Referer handling, and without its start-up warning about it.

tweetform turns Referer headers off (``REFERER_ENABLED = False``: an API needs none, and
every queued request would carry one). Scrapy's redirect middleware then warns at every
start that it "found no RefererMiddleware": a WARNING no user can act on. Scrapy's
message says what to do — replace the middleware with a subclass that overrides
``handle_referer()`` — and this is that subclass; it also skips the look-up that warns.
(``METAREFRESH_ENABLED`` is off: an API answers JSON, never an HTML meta refresh.)
"""

from __future__ import annotations

from scrapy import Request
from scrapy.downloadermiddlewares.redirect import RedirectMiddleware
from scrapy.http import Response


class ApiRedirectMiddleware(RedirectMiddleware):
    def handle_referer(self, request: Request, response: Response) -> None:
        request.headers.pop("Referer", None)  # no Referer on a redirect either

    def _engine_started(self) -> None:
        """Scrapy's looks for a RefererMiddleware here, and warns when there is none: there is none on purpose."""
