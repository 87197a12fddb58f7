# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit install bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m varsel.demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# Debian's Chromium and the pinned axe-core for the page tests (scripts/ensure-browser).
BROWSER_STAMP := tests/browser/node_modules/.ensured

$(BROWSER_STAMP): scripts/ensure-browser tests/browser/package-lock.json
	scripts/ensure-browser
	touch $(BROWSER_STAMP)

unit: $(STAMP) $(BROWSER_STAMP)
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) build *.egg-info demo
