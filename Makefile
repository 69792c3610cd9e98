# The README's commands. Each sets up what it needs by itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint format unasync docs bench contract-service contract-service-async clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -e ".[async]" --group dev --group contract-tests
	touch $(STAMP)

DOCS_STAMP := $(VENV)/.installed-docs
# Files that ruff checks and formats.
PY_PATHS := src tests bench contract-tests scripts conftest.py docs/conf.py

$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --group docs
	touch $(DOCS_STAMP)

lint: $(STAMP)
	$(BIN)/ruff check $(PY_PATHS)
	$(BIN)/ruff format --check $(PY_PATHS)
	$(BIN)/mypy --strict src
	$(BIN)/python scripts/unasync.py --check

test: lint
	$(BIN)/python -m pytest -W error -p no:cacheprovider

format: $(STAMP)
	$(BIN)/ruff format $(PY_PATHS)
	$(BIN)/ruff check --fix $(PY_PATHS)

unasync: $(STAMP)
	$(BIN)/python scripts/unasync.py

# The documentation site, in docs/_build/html. Every warning is an error and references
# are checked (a broken one, a page left out of the table of contents or a public name
# without a docstring fails the build); then every example of the docs, the README and the
# docstrings runs (as in make test).
docs: $(DOCS_STAMP)
	rm -rf docs/api docs/_build
	$(BIN)/sphinx-build -b html -W --keep-going -n -q docs docs/_build/html
	$(BIN)/python -m pytest -W error -p no:cacheprovider -q README.md docs src/ld_eventsource
	@echo "docs: docs/_build/html/index.html"

# Every benchmark, side by side with the reference and the other Python clients; the
# results (text, JSON, Markdown, a chart) go to bench/results/. About 10 minutes on 2 cores.
bench: $(STAMP)
	mkdir -p bench/results
	status=0; \
	$(BIN)/python bench/parser.py --json bench/results/parser.json \
		> bench/results/parser.txt || status=1; cat bench/results/parser.txt; \
	$(BIN)/python bench/throughput.py --json bench/results/throughput.json \
		--markdown bench/results/throughput.md --plot bench/results/throughput.png \
		> bench/results/throughput.txt || status=1; cat bench/results/throughput.txt; \
	if test -f bench/latency.py; then \
		$(BIN)/python bench/latency.py --json bench/results/latency.json \
			> bench/results/latency.txt || status=1; cat bench/results/latency.txt; \
	fi; \
	if test -f bench/fanout.py; then \
		$(BIN)/python bench/fanout.py --json bench/results/fanout.json \
			> bench/results/fanout.txt || status=1; cat bench/results/fanout.txt; \
	fi; \
	exit $$status

contract-service: $(STAMP)
	$(BIN)/python contract-tests/sync_service.py 8000

contract-service-async: $(STAMP)
	$(BIN)/python contract-tests/async_service.py 8001

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis docs/_build docs/api
