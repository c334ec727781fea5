"""How every tweetform command reports a mistake: one line on stderr, exit status 2."""

from __future__ import annotations

import sys
from typing import NoReturn


def fail(message: str) -> NoReturn:
    print(f"tweetform: {message}", file=sys.stderr)
    sys.exit(2)
