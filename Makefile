# Two commands on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint eval bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/tsunagu serve

test: $(STAMP)
	bash scripts/ensure-test-deps.sh
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

eval: $(STAMP)
	$(BIN)/tsunagu eval tests/data/dev.yaml

bench: $(STAMP)
	$(BIN)/python bench/triage.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
