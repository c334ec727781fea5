"""Helpers that start the project's real servers for tests/ and bench/ (see ``servers``)."""
