# Two entry points for a fresh machine:
#   make serve  -> installs nangluc with its service extra and runs the service on an embedded SQLite file
#   make test   -> installs nangluc with every extra and the test tools, and runs the whole suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: serve test install install-test browser lint

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[service]"

install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"

# Browser tests drive Debian's chromium; install it when we can (root, apt).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: /usr/bin/chromium missing; browser tests will be skipped"; fi; \
	fi

serve: install
	$(BIN)/nangluc serve --host $(HOST) --port $(PORT)

test: install-test browser
	$(BIN)/python -m pytest -n 2 -q

lint: install-test
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
