# The two commands of README.md: `make demo` (a real crawl against the sandbox)
# and `make test`. Both set up what they need on a fresh Debian machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup tweepy redis tinyproxy openssl demo test bench clean

$(BIN)/scrapy: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/scrapy

# tweepy's real Client reads the sandbox in tests/test_sandbox_collections.py. tweepy 4.17.0
# requires oauthlib<4 and tweetform pins oauthlib==4.0.1, so it cannot be an extra: it goes in
# without its requirements (requests and requests-oauthlib are tweetform's own).
tweepy: setup
	@$(BIN)/python -c "import tweepy, sys; sys.exit(tweepy.__version__ != '4.17.0')" 2>/dev/null || \
	  $(BIN)/pip install --quiet --no-deps tweepy==4.17.0

# Redis for the distributed tests: Debian's redis-server (installed when missing and we may).
redis:
	@command -v redis-server >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; \
	  else sudo apt-get install -y -qq redis-server; fi; }

# Proxies for the proxy tests: Debian's tinyproxy (the tests start their own processes on free
# loopback ports with their own config files; the system service is never used).
tinyproxy:
	@command -v tinyproxy >/dev/null || test -x /usr/bin/tinyproxy || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq tinyproxy >/dev/null; \
	  else sudo apt-get install -y -qq tinyproxy; fi; }

# The Redis-over-TLS test makes its self-signed certificate with the openssl CLI.
openssl:
	@command -v openssl >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq openssl >/dev/null; \
	  else sudo apt-get install -y -qq openssl; fi; }

demo: setup
	$(BIN)/python -m tweetform.demo

test: setup tweepy redis tinyproxy openssl
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/sandbox_rate.py

clean:
	rm -rf $(VENV) data .pytest_cache
