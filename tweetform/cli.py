"""``tweetform``: the console command, the same as ``scrapy`` inside the project, from any directory.

``scrapy`` finds a project through the ``scrapy.cfg`` nearest the current
directory; outside the repository it knows neither tweetform's settings nor
its commands. ``tweetform crawl friends -a user_id=12`` (``tweetform status``,
…) sets ``SCRAPY_SETTINGS_MODULE`` to tweetform's settings (unless the
environment already names a settings module) and runs Scrapy's command line:
the same commands, options, exit statuses and settings sources
(``settings_local.py`` in the current directory, the environment, ``-s``).
"""

from __future__ import annotations

import os
import sys

from scrapy.cmdline import execute


def main() -> None:
    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "tweetform.settings")
    execute(sys.argv)


if __name__ == "__main__":
    main()
