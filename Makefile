# credit-scoring-api: every command a newcomer needs. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
HOST ?= 127.0.0.1
MODEL_URI ?= models:/credit-scoring@champion

.DEFAULT_GOAL := help
.PHONY: help serve test model train export bench profile monitor lint docker screenshots clean db db-stop batch-env portfolio portfolio-bench batch-zip

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# Environments: one virtual environment; the serve set is a subset of the dev set, same pins.
$(VENV)/bin/python:
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed ($(PYTHON) not found; set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.serve-installed: requirements-serve.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements-serve.txt
	@touch $@

$(VENV)/.dev-installed: requirements-serve.txt requirements-train.txt requirements-batch.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@ $(VENV)/.serve-installed $(VENV)/.batch-installed

$(VENV)/.batch-installed: requirements-serve.txt requirements-batch.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements-batch.txt
	@touch $@

batch-env: $(VENV)/.batch-installed ## the portfolio-scoring job's environment alone (PySpark; needs Java 17)

serve: $(VENV)/.serve-installed ## serve the API on the committed model at http://$(HOST):$(PORT)
	@HOST=$(HOST) PORT=$(PORT) PY=$(PY) scripts/serve.sh

test: $(VENV)/.dev-installed ## run the whole test suite (unit, API, monitoring, notebook, benchmark smoke)
	$(PY) -m pytest

model: $(VENV)/.dev-installed ## generate data, train, register in MLflow and export models/credit_scoring.onnx
	$(PY) -m training
	$(PY) -m export --model-uri $(MODEL_URI) --out models

train: $(VENV)/.dev-installed ## train and register only
	$(PY) -m training

export: $(VENV)/.dev-installed ## export the registered champion to models/
	$(PY) -m export --model-uri $(MODEL_URI) --out models

bench: $(VENV)/.dev-installed ## model-only benchmarks + HTTP load vs the no-op floor and mlflow serve -> benchmarks/results/ (needs make model, wrk)
	BENCH_MODEL=project $(PY) -m pytest benchmarks -m "not slow" --benchmark-min-rounds=20 --benchmark-max-time=2 \
		--benchmark-warmup=on --benchmark-json=benchmarks/results/pytest-benchmark.json
	$(PY) -m benchmarks.http_load
	$(PY) -m benchmarks.report

profile: $(VENV)/.dev-installed ## py-spy flamegraphs of the server under load and of the scoring path -> benchmarks/results/*.svg
	$(PY) -m benchmarks.profile

N ?= 2000
DRIFT ?= income
monitor: $(VENV)/.dev-installed ## serve the model, send N applicants (second half shifted by DRIFT), write the drift report to reports/
	$(PY) -m monitoring demo --n $(N) --drift $(DRIFT) --out reports $(if $(URL),--url $(URL)); test $$? -le 1

INPUT ?= portfolio.parquet
OUTPUT ?= scored
portfolio: $(VENV)/.batch-installed ## score INPUT (CSV or Parquet) on local Spark into OUTPUT/scored and OUTPUT/rejects
	$(PY) -m batch score --input $(INPUT) --output $(OUTPUT)

batch-zip: $(VENV)/.batch-installed ## dist/credit_scoring_batch.zip (contract/ + batch/) for spark-submit --py-files
	$(PY) -m batch package --out dist

ROWS ?= 1000000
portfolio-bench: $(VENV)/.dev-installed ## ROWS applicants: the Spark job vs mlflow spark_udf vs one process -> benchmarks/results/portfolio.json
	$(PY) -m benchmarks.portfolio --rows $(ROWS)

lint: $(VENV)/.dev-installed ## ruff, mypy, hadolint, actionlint, shellcheck
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/hadolint Dockerfile
	$(VENV)/bin/actionlint -shellcheck=$(VENV)/bin/shellcheck .github/workflows/cicd.yml
	$(VENV)/bin/shellcheck scripts/*.sh .ci/run

db: $(VENV)/.dev-installed ## start a local PostgreSQL decision store in .pgdata/ (127.0.0.1:5433) and print its DATABASE_URL
	@$(PY) scripts/pg_cluster.py start --dir .pgdata

db-stop: $(VENV)/.dev-installed ## stop the local PostgreSQL of make db (its data stays in .pgdata/)
	@$(PY) scripts/pg_cluster.py stop --dir .pgdata

docker: ## build and run the image (machines with a Docker engine)
	docker build --build-arg GIT_SHA=$$(git rev-parse HEAD 2>/dev/null || echo unknown) -t credit-scoring-api .
	docker run --rm -p $(PORT):8000 -e API_KEY credit-scoring-api

screenshots: $(VENV)/.dev-installed ## PNGs of /docs, /redoc, the drift report and a flamegraph into docs/screenshots/
	$(PY) scripts/screenshots.py --serve

clean: ## remove caches and generated state (keeps the virtual environment and models/)
	rm -rf .pytest_cache .ruff_cache .mypy_cache .benchmarks logs reports
