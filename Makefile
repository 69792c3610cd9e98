# The README's commands. Each sets up what it needs by itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint format unasync bench contract-service contract-service-async clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -e ".[async]" --group dev --group contract-tests
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench contract-tests scripts
	$(BIN)/ruff format --check src tests bench contract-tests scripts
	$(BIN)/mypy --strict src
	$(BIN)/python scripts/unasync.py --check

test: lint
	$(BIN)/python -m pytest -W error -p no:cacheprovider

format: $(STAMP)
	$(BIN)/ruff format src tests bench contract-tests scripts
	$(BIN)/ruff check --fix src tests bench contract-tests scripts

unasync: $(STAMP)
	$(BIN)/python scripts/unasync.py

contract-service: $(STAMP)
	$(BIN)/python contract-tests/sync_service.py 8000

contract-service-async: $(STAMP)
	$(BIN)/python contract-tests/async_service.py 8001

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
