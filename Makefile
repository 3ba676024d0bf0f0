# The two commands: `make run` serves the whole system, `make test` runs the test suite.
# Both prepare what they need first (bin/bootstrap is idempotent and fast when done).
PYTHON := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: run run-proxy test lint screenshots setup setup-proxy setup-test migrate clean

run: setup
	@$(PYTHON) bin/memedroid-supervisor

# The production shape on a laptop: the whole system, and nginx in front of it on
# PROXY_LISTEN (its micro-cache, the media files from the disk, buffered uploads).
PROXY_LISTEN ?= 127.0.0.1:8080
run-proxy: setup-proxy
	@TRUSTED_PROXIES=1 $(PYTHON) bin/memedroid-supervisor & app=$$!; \
	trap 'kill $$app 2>/dev/null; wait $$app' EXIT; \
	$(PYTHON) -m memedroid proxy --listen $(PROXY_LISTEN)

test: setup-test lint
	@echo "==> running the test suite"
	@$(PYTHON) -m pytest $(PYTEST_ARGS)

lint: setup-test
	@echo "==> quality gates: ruff check, ruff format --check, mypy, import contracts, sqlfluff lint"
	@.venv/bin/ruff check --quiet .
	@.venv/bin/ruff format --check --quiet .
	@.venv/bin/mypy
	@.venv/bin/lint-imports --no-cache
	@.venv/bin/sqlfluff lint sql/ --nocolor

# The web client's main pages at a phone's and a desktop's size, in test-output/screenshots/.
screenshots: setup-test
	@SCREENSHOTS=1 $(PYTHON) -m pytest -q tests/test_browser.py -k member
	@echo "==> screenshots in test-output/screenshots/"

setup:
	@bin/bootstrap

setup-proxy:
	@bin/bootstrap --proxy

setup-test:
	@bin/bootstrap --test

migrate: setup
	@$(PYTHON) -m memedroid migrate

clean:
	rm -rf .venv var test-output
