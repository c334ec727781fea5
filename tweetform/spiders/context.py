"""The request meta key that marks a tweetform API page and carries its context (endpoint key, target, level, ...).

A module of its own so that spider middlewares can recognise an API page without
importing the spiders, which import them."""

META_CTX = "tweetform_ctx"
