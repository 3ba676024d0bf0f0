# The two commands: `make run` serves the whole system, `make test` runs the test suite.
# Both prepare what they need first (bin/bootstrap is idempotent and fast when done).
PYTHON := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: run test lint screenshots setup setup-test migrate clean

run: setup
	@$(PYTHON) bin/memedroid-supervisor

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

setup-test:
	@bin/bootstrap --test

migrate: setup
	@$(PYTHON) -m memedroid migrate

clean:
	rm -rf .venv var test-output
