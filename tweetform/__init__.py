"""tweetform: collect Twitter/X data for research with Scrapy."""

__version__ = "0.1.0"
