# airflow-mlops: `make` (or `make help`) lists every target.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

REPO       := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
BIN        := $(REPO)/bin
export PATH := $(BIN):$(PATH)

# Pinned toolchain (DESIGN.md section 3), built with `go install` into ./bin.
HELM_VERSION := v3.20.2
KIND_VERSION := v0.31.0
PYTHON       ?= python3

CHART        := charts/airflow-mlops
VENV         := $(REPO)/.venv
VENV_STAMP   := $(VENV)/.lock-stamp
TEST_LOCK    := requirements/test.lock
PYTEST_ARGS  ?=

# helm keeps its repository list and cache inside the checkout: nothing is written to ~/.config.
export HELM_CONFIG_HOME := $(REPO)/.helm/config
export HELM_CACHE_HOME  := $(REPO)/.helm/cache
export HELM_DATA_HOME   := $(REPO)/.helm/data

.PHONY: help
help: ## List the targets (default)
	@echo "airflow-mlops: Airflow + MLflow GPU platform chart. Targets:"
	@grep -hE '^[a-zA-Z0-9_.-]+:.*?## ' $(MAKEFILE_LIST) | sort \
	  | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

# --- toolchain -----------------------------------------------------------------------

.PHONY: tools
tools: $(BIN)/helm $(BIN)/kind ## Build the pinned helm and kind into ./bin (needs Go)

# Rebuilt only when the binary in ./bin is not the pinned module version.
$(BIN)/helm: FORCE
	@scripts/install-go-tool helm.sh/helm/v3/cmd/helm helm.sh/helm/v3 $(HELM_VERSION) $(BIN)

$(BIN)/kind: FORCE
	@scripts/install-go-tool sigs.k8s.io/kind sigs.k8s.io/kind $(KIND_VERSION) $(BIN)

.PHONY: FORCE
FORCE:

# --- Python environment ----------------------------------------------------------------

.PHONY: venv
venv: $(VENV_STAMP) ## Build .venv (Airflow 3.1.8 + provider + test tools) from requirements/test.lock

$(VENV_STAMP): $(TEST_LOCK)
	@echo "venv: building $(VENV) from $(TEST_LOCK)"
	@rm -rf $(VENV)
	@$(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/pip install --quiet --disable-pip-version-check --upgrade pip
	@$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -r $(TEST_LOCK)
	@$(VENV)/bin/pip check
	@touch $@

.PHONY: lock-venv
lock-venv: ## Re-resolve requirements/test.lock (then run `make test` to verify the set)
	@scripts/lock-venv $(TEST_LOCK)

# --- official chart --------------------------------------------------------------------

.PHONY: deps
deps: tools ## Download the official Airflow chart 1.20.0 into charts/ (continues offline)
	@scripts/chart-deps $(CHART)

# --- lint ---------------------------------------------------------------------------------

.PHONY: lint
lint: tools venv ## helm lint, ruff, bash -n / shellcheck on scripts
	@scripts/lint-chart $(CHART)
	@$(VENV)/bin/ruff check .
	@scripts/lint-shell

# --- tests ----------------------------------------------------------------------------------

.PHONY: test
test: tools venv deps lint ## Run the whole test suite (every tier that can run on this machine)
	@$(VENV)/bin/pytest $(PYTEST_ARGS)

.PHONY: test-chart
test-chart: tools venv ## Only the chart and values tests
	@$(VENV)/bin/pytest tests/chart tests/values $(PYTEST_ARGS)

.PHONY: clean
clean: ## Remove ./bin, the virtualenvs and helm's local cache
	rm -rf $(BIN) $(VENV) $(REPO)/.venv-* $(REPO)/.helm $(CHART)/charts
