"""How the package is put together, read from its source: each rule has one home."""

from __future__ import annotations

from conftest import ROOT

PACKAGE = ROOT / "tweetform"


def test_redis_url_is_read_in_one_place():
    """Whether a crawl is distributed is config.uses_redis's answer everywhere (config.redis_url the URL)."""
    readers = sorted(str(path.relative_to(ROOT)) for path in PACKAGE.rglob("*.py")
                     if '"REDIS_URL")' in path.read_text(encoding="utf-8") and "sandbox" not in path.parts)
    assert readers == ["tweetform/config.py"]
