"""The sandbox: a local emulator of the Twitter/X API (v1.1 and v2).

Start it with ``scrapy sandbox`` or ``python -m tweetform.sandbox``. It serves a
deterministic synthetic world (:mod:`.world`), verifies OAuth 1.0a and bearer
credentials (:mod:`.auth`), enforces per-credential rate limits (:mod:`.limits`),
injects faults on demand (:mod:`.faults`) and answers test-only ground truth
under ``/_sandbox/`` (:mod:`.server`).
"""
