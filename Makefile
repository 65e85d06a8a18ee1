# hwcap-operator: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: test unit lint demo demo-down system-packages venv clean bench conformance shim binaries

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip==25.3
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

system-packages:
	tools/ensure-system-packages.sh

lint: venv
	$(BIN)/ruff check operator tests bench
	$(BIN)/mypy

## The static init-step binary hwcap-exec (musl), into operator/shim/build/.
shim: system-packages
	$(MAKE) -C operator/shim

## kube-apiserver, kube-scheduler, etcd, helm built from Go modules (pinned; cached in ~/.cache/hwcap-operator).
binaries: venv
	$(BIN)/python -m hwcap_operator.devcluster build

## The whole test suite, as CI runs it from a clean clone (.ci/run calls exactly this).
test: system-packages venv lint shim binaries
	$(BIN)/pytest

## Fast pure-logic tests only.
unit: venv
	$(BIN)/pytest tests/unit

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
