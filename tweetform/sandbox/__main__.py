"""``python -m tweetform.sandbox``: start the API emulator and print its URL."""

from __future__ import annotations

import argparse
import sys

from .config import add_arguments, from_args
from .server import run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tweetform.sandbox", description="Local emulator of the Twitter/X API.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        config = from_args(args)
    except (OSError, ValueError) as exc:
        print(f"sandbox: bad configuration: {exc}", file=sys.stderr)
        return 2
    run(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
