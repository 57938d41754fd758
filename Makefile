# Thunderbolt. Every target uses the repository's .venv (made by `make install`).
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help install lint typecheck verify crds test test-unit test-integration ci

help: ## list targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  %-20s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml hack/install.sh
	bash hack/install.sh $(VENV)
	touch $@

install: $(VENV)/.installed ## create .venv with the package (editable) and test tools

lint: install ## ruff, and the import layers (lint-imports; contracts in pyproject.toml)
	$(VENV)/bin/ruff check src tests bench hack
	$(VENV)/bin/ruff format --check src tests bench hack
	$(VENV)/bin/lint-imports

typecheck: install ## mypy on src/
	$(VENV)/bin/mypy src

crds: install ## regenerate crds/ and the chart's CRDs from the pydantic models
	$(PY) -m thunderbolt.api.crdgen --out crds --chart charts/thunderbolt
	$(PY) hack/gen_crd_reference.py

verify: crds ## fail when generated files differ from what is committed
	@git diff --exit-code -- crds charts/thunderbolt/templates/crds docs/crd-reference.md || { echo "generated CRDs drifted: run 'make crds' and commit"; exit 1; }
	@test -z "$$(git ls-files --others --exclude-standard crds charts/thunderbolt/templates/crds)" || { echo "untracked generated files: run 'make crds' and commit"; exit 1; }

test-unit: install ## unit tests and the hostile-input suite's parts that need no cluster
	$(PY) -m pytest tests/unit tests/hostile -q -m "not cluster"

test-integration: install images ## integration tests on the real local cluster (starts it, builds images)
	$(PY) -m pytest tests/integration -q
	$(PY) -m pytest tests/hostile -q -m cluster

test: lint typecheck verify test-unit test-integration ## everything CI runs

-include mk/*.mk
