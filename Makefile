# The README's commands. Each sets up what it needs by itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-deps test-downstream lint format unasync docs bench fuzz soak \
	contract-service contract-service-async clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -e ".[async]" --group dev --group contract-tests
	touch $(STAMP)

# The tour of the sse tool against its own test server (scripts/demo.py): needs only the
# package itself, so a fresh clone runs it after one quick install.
DEMO_STAMP := $(VENV)/.installed-demo

$(DEMO_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/python scripts/demo.py

DOCS_STAMP := $(VENV)/.installed-docs
# Files that ruff checks and formats.
PY_PATHS := src tests bench contract-tests scripts conftest.py docs/conf.py fuzz

$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --group docs
	touch $(DOCS_STAMP)

lint: $(STAMP)
	$(BIN)/ruff check $(PY_PATHS)
	$(BIN)/ruff format --check $(PY_PATHS)
	$(BIN)/mypy --strict src tests bench contract-tests
	$(BIN)/python scripts/unasync.py --check

test: lint
	$(BIN)/python -m pytest -W error -p no:cacheprovider

# The test suite against the lowest and the highest urllib3 and aiohttp that pyproject.toml
# declares, each in a venv of its own (.venv-deps-low/, .venv-deps-high/): docs/reliability.md.
test-deps:
	PYTHON=$(PYTHON) scripts/test-deps.sh

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

# The test suite of LaunchDarkly's Python server SDK (launchdarkly-server-sdk, from its source
# distribution) with this checkout in place of launchdarkly-eventsource, in venvs of its own
# under .venv-downstream/. REF=1 also runs it with launchdarkly-eventsource 1.7.4 and compares
# test by test. About 2 minutes a suite, plus about 1 minute a venv the first time.
test-downstream:
	$(PYTHON) scripts/test_downstream.py $(if $(REF),--ref)

# The fuzz targets of the parser and the chunked decoder (fuzz/), for SECONDS in all, niced.
# atheris comes as a prebuilt wheel (no compiler needed) in its own dependency group.
SECONDS ?= 60
FUZZ_STAMP := $(VENV)/.fuzz-installed

$(FUZZ_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --group fuzz
	touch $(FUZZ_STAMP)

fuzz: $(FUZZ_STAMP)
	nice -n 15 $(BIN)/python -m fuzz.run --seconds $(SECONDS)

# The long endurance and chaos runs (10,000 connect/drop cycles, 1,000 close() tries,
# 20,000 events through 1,000 drops, for each client), printing their figures.
soak: $(STAMP)
	SOAK=1 nice -n 10 $(BIN)/python -m pytest -W error -p no:cacheprovider -s --timeout=3600 \
		tests/test_endurance.py tests/test_chaos.py

contract-service: $(STAMP)
	$(BIN)/python contract-tests/sync_service.py 8000

contract-service-async: $(STAMP)
	$(BIN)/python contract-tests/async_service.py 8001

clean:
	rm -rf $(VENV) .venv-downstream .venv-deps-low .venv-deps-high .mypy_cache .ruff_cache \
		.pytest_cache .hypothesis .fuzz docs/_build docs/api
