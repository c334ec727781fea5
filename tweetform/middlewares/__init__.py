"""Downloader middlewares: pacing (waits), signing, API answers (auth errors, 429s)."""
