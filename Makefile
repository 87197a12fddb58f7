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

# The tests' temporary files (their SQLite stores among them) on tmpfs where there is one: a
# commit there costs no fsync (~3 ms on this machine's disk), and the suite makes thousands.
# One folder per checkout; pytest empties it at the start of each run.
TEST_TMP := $(shell [ -d /dev/shm ] && [ -w /dev/shm ] && echo /dev/shm/varsel-test-$$(printf %s "$(CURDIR)" | md5sum | cut -c1-8))

unit: $(STAMP) $(BROWSER_STAMP)
# --dist loadscope: each module runs in one test process, so a module-scoped fixture (the
# workers' 120,000-unit store, Chromium, Dovecot, the national dump) is made once. (loadgroup
# with xdist_group marks stopped grouping under pytest 9: xdist rewrites item._nodeid.)
	$(BIN)/pytest -n 2 --dist loadscope $(if $(TEST_TMP),--basetemp=$(TEST_TMP)) $(PYTEST_ARGS)

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) build *.egg-info demo
