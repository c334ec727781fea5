"""Research exports from bucket files: the follow network as a graph, tweets as rows.

:mod:`tweetform.export.files` reads pages from plain, gzip and archived bucket
files alike; :mod:`.graph` builds the follow network; :mod:`.tweets` flattens
tweets the way the twarc2 tools do. ``scrapy export`` is the command.
"""

from tweetform.export.files import ReadStats, bucket_files, iter_pages

__all__ = ["ReadStats", "bucket_files", "iter_pages"]
