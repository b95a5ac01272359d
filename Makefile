# credit-scoring-api: every command a newcomer needs. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
HOST ?= 127.0.0.1
MODEL_URI ?= models:/credit-scoring@champion

N ?= 2000
DRIFT ?= income
URL ?=
NOTEBOOK_OUT ?= reports/notebook
INPUT ?= portfolio.parquet
OUTPUT ?= scored
ROWS ?= 1000000
URL_SHOWN := http://$(HOST):$(PORT)

.DEFAULT_GOAL := help
.PHONY: help serve test model train export bench profile monitor notebook notebook-run lint lock docker screenshots clean \
	db db-stop batch-env portfolio portfolio-bench batch-zip

# `make help`: the targets (their `## ` comments, with $(URL_SHOWN)/$(NOTEBOOK_OUT) replaced by their values),
# then the variables with their current values. Override any of them: `make serve PORT=9000`.
help: ## list the targets and the variables
	@echo "Targets:"
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -e 's|$$(URL_SHOWN)|$(URL_SHOWN)|g' \
		-e 's|$$(NOTEBOOK_OUT)|$(NOTEBOOK_OUT)|g' -e 's|\$$\$$|$$|g' \
		| awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'
	@echo ""
	@echo "Variables (make TARGET NAME=value), current value first:"
	@printf '  %-12s %-34s %s\n' \
		PORT '$(PORT)' 'port of make serve and make docker' \
		HOST '$(HOST)' 'address make serve listens on' \
		PYTHON '$(PYTHON)' 'Python 3.11 interpreter the virtual environment is built from' \
		VENV '$(VENV)' 'virtual environment folder' \
		N '$(N)' 'applicants make monitor sends (half unshifted, half shifted)' \
		DRIFT '$(DRIFT)' 'shift of the second half: income, category, missing, all or none' \
		URL '$(if $(URL),$(URL),(unset))' 'make monitor: use this running API instead of starting one' \
		MODEL_URI '$(MODEL_URI)' 'MLflow model make model/make export convert' \
		NOTEBOOK_OUT '$(NOTEBOOK_OUT)' 'folder of make notebook-run (executed notebook + its report)' \
		API_KEY '$(if $(API_KEY),(set),(unset))' 'make serve: key to serve with; unset: generated, kept in .api-key' \
		UPGRADE '$(if $(UPGRADE),$(UPGRADE),(unset))' 'make lock UPGRADE=1: re-resolve every pin' \
		INPUT '$(INPUT)' 'make portfolio: the CSV or Parquet file of applications to score' \
		OUTPUT '$(OUTPUT)' 'make portfolio: the output folder (scored/, rejects/, summary.json)' \
		ROWS '$(ROWS)' 'make portfolio-bench: applicants generated for the Spark benchmark'
	@echo ""
	@echo "Targets that need the dev environment (make test, model, monitor, notebook, lint, ...) install it"
	@echo "first into $(VENV) from requirements-dev.lock (about a minute, once)."

# Environments: one virtual environment, installed from the hash-pinned locks (`make lock` writes
# them from the requirements-*.txt); the serve lock is a subset of the dev lock, same pins.
# pip itself comes from requirements-pip.lock, hash-checked too, before anything else.
PIP_INSTALL := $(PY) -m pip install --quiet --disable-pip-version-check --require-hashes

$(VENV)/bin/python:
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed ($(PYTHON) not found; set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -r requirements-pip.lock

$(VENV)/.serve-installed: requirements-serve.lock | $(VENV)/bin/python
	$(PIP_INSTALL) -r requirements-serve.lock
	@touch $@

$(VENV)/.dev-installed: requirements-dev.lock | $(VENV)/bin/python
	$(PIP_INSTALL) -r requirements-dev.lock
	@touch $@ $(VENV)/.serve-installed $(VENV)/.batch-installed

$(VENV)/.batch-installed: requirements-batch.lock | $(VENV)/bin/python
	$(PIP_INSTALL) -r requirements-batch.lock
	@touch $@

batch-env: $(VENV)/.batch-installed ## the portfolio-scoring job's environment alone (PySpark; needs Java 17)

portfolio: $(VENV)/.batch-installed ## score INPUT (CSV or Parquet) on local Spark into OUTPUT/scored and OUTPUT/rejects
	$(PY) -m batch score --input $(INPUT) --output $(OUTPUT)

batch-zip: $(VENV)/.batch-installed ## dist/credit_scoring_batch.zip (contract/ + batch/) for spark-submit --py-files
	$(PY) -m batch package --out dist

portfolio-bench: $(VENV)/.dev-installed ## ROWS applicants: the Spark job vs mlflow spark_udf vs one process -> benchmarks/results/portfolio.json
	$(PY) -m benchmarks.portfolio --rows $(ROWS)

lock: $(VENV)/.dev-installed ## refresh requirements-*.lock from requirements-*.txt (UPGRADE=1: newest versions)
	UV=$(VENV)/bin/uv UPGRADE=$(UPGRADE) scripts/lock.sh

serve: $(VENV)/.serve-installed ## serve the API on the committed model at $(URL_SHOWN) (key: $$API_KEY or .api-key)
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

monitor: $(VENV)/.dev-installed ## install the dev env, serve the model, send N applicants (second half shifted by DRIFT), drift report in reports/
	$(PY) -m monitoring demo --n $(N) --drift $(DRIFT) --out reports $(if $(URL),--url $(URL)); test $$? -le 1

# The notebook reads the log folder of the last `make monitor` (monitoring.demo.latest_demo_logs;
# MONITORING_LOGS=... to choose another) and writes its own report into $(NOTEBOOK_OUT), never over reports/.
NOTEBOOK_ENV := PYTHONPATH=$(CURDIR) MONITORING_OUT=$${MONITORING_OUT:-$(NOTEBOOK_OUT)}
notebook: $(VENV)/.dev-installed ## open notebook/monitoring.ipynb in JupyterLab (on the last make monitor's log)
	$(NOTEBOOK_ENV) $(VENV)/bin/jupyter lab notebook/monitoring.ipynb

notebook-run: $(VENV)/.dev-installed ## execute the notebook into $(NOTEBOOK_OUT)/monitoring.ipynb and .html
	@mkdir -p $(NOTEBOOK_OUT)
	$(NOTEBOOK_ENV) $(VENV)/bin/jupyter nbconvert --to notebook --execute notebook/monitoring.ipynb \
		--ExecutePreprocessor.timeout=600 --output-dir $(NOTEBOOK_OUT) --output monitoring.ipynb
	$(VENV)/bin/jupyter nbconvert --to html $(NOTEBOOK_OUT)/monitoring.ipynb --output-dir $(NOTEBOOK_OUT)
	@echo "executed notebook: $(NOTEBOOK_OUT)/monitoring.ipynb, $(NOTEBOOK_OUT)/monitoring.html"

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
