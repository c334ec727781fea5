"""The sandbox: a local emulator of the Twitter/X API (v1.1 and v2).

Start it with ``scrapy sandbox`` or ``python -m tweetform.sandbox``. It serves a
deterministic synthetic world (:mod:`.world`) that evolves with one logical
clock (:mod:`.clock`, :mod:`.world.evolution`), verifies OAuth 1.0a and bearer
credentials (:mod:`.auth`), enforces per-credential rate limits (:mod:`.limits`,
from the one table in :mod:`tweetform.api.limits`), bills what it returns per app
(:mod:`.billing`, :mod:`.usage`), injects faults on demand (:mod:`.faults`) and
answers test-only ground truth under ``/_sandbox/`` (:mod:`.server`).
"""
