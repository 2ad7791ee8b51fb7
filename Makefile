# reportqa — two commands: `make run` (set up, ingest the samples, start the app) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501
export ANONYMIZED_TELEMETRY := False

.PHONY: run test setup setup-dev ingest-samples app lint eval bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Re-install whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

setup: $(VENV)/.installed
setup-dev: $(VENV)/.installed-dev

ingest-samples: setup
	$(BIN)/qa ingest data/reports

app: setup
	$(BIN)/streamlit run app.py --server.headless true --server.port $(PORT) --browser.gatherUsageStats false

## run: set up, ingest the sample reports, start the app on http://localhost:$(PORT)
run: ingest-samples app

## test: set up (incl. headless Chromium for the UI tests) and run the tests
test: setup-dev
	./scripts/ensure-chromium
	$(BIN)/ruff check qa tests bench app.py
	$(BIN)/pytest -q

lint: setup-dev
	$(BIN)/ruff check qa tests bench app.py
	$(BIN)/ruff format --check qa tests bench app.py

eval: setup
	$(BIN)/qa eval --dataset evals/datasets/qa_dev.jsonl --docs data/reports

bench: setup
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/search.py

clean:
	rm -rf $(VENV) .qa .qa-test-cache .pytest_cache
