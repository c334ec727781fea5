# The two commands of README.md: `make demo` (a real crawl against the sandbox)
# and `make test`. Both set up what they need on a fresh Debian machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup redis demo test bench clean

$(BIN)/scrapy: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/scrapy

# Redis for the distributed tests: Debian's redis-server (installed when missing and we may).
redis:
	@command -v redis-server >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; \
	  else sudo apt-get install -y -qq redis-server; fi; }

demo: setup
	$(BIN)/python -m tweetform.demo

test: setup redis
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/sandbox_rate.py

clean:
	rm -rf $(VENV) data .pytest_cache
