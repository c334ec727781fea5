"""Which credential sends each request: the credential pool (and, later, quota)."""
