"""The request meta key that marks a tweetform API page and carries its context (endpoint key, target, level, ...).

A module of its own so that spider middlewares can recognise an API page without
importing the spiders, which import them."""

META_CTX = "tweetform_ctx"
#: a context key: the answer is billed although no page of it is written (a screen-name look-up),
#: so the cost middleware charges its body (tweetform.cost.middleware)
BILL_UNWRITTEN = "bill_unwritten"
