# hwcap-operator: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: test unit lint demo demo-down system-packages venv clean bench conformance shim binaries kernels chart-lint \
	reliability

## The product (src/, editable, with its test tools) and the development tooling (dev/, a distribution of its own).
$(BIN)/.installed: pyproject.toml dev/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip==25.3
	$(BIN)/pip install -q -e '.[dev]' -e ./dev
	touch $@

venv: $(BIN)/.installed

system-packages:
	tools/ensure-system-packages.sh

lint: venv
	$(BIN)/ruff check src dev tests bench
	$(BIN)/mypy

## The static init-step binary hwcap-exec (musl), into src/shim/build/.
shim: system-packages
	$(MAKE) -C src/shim

## kube-apiserver, kube-scheduler, etcd, helm and the real nodes' kubelet + containerd built from Go modules (pinned; cached in
## ~/.cache/hwcap-operator; the node runtime adds ~10 min to a cold first build on 2 cores).
binaries: venv
	$(BIN)/hwcap-dev cluster build --node --crio

## helm lint --strict + helm template of charts/hwcap-operator for every ci/*-values.yaml, with the pinned helm;
## and the chart's CRD must be the generated one.
CHART := charts/hwcap-operator
chart-lint: binaries
	cmp crds/hwcap.dev_migrationdomains.yaml $(CHART)/crds/hwcap.dev_migrationdomains.yaml
	@helm="$$($(BIN)/python -c 'from hwcap_dev.devcluster.assets import resolve_binaries; print(resolve_binaries().helm)')" && \
	kube="$$($(BIN)/python -c 'from hwcap_dev.devcluster.build import PINS; print(PINS.kubernetes)')" && \
	for values in $(CHART)/ci/*-values.yaml; do \
	  echo "== helm lint --strict / template: $$values"; \
	  "$$helm" lint --strict $(CHART) --values "$$values" --kube-version "$$kube" && \
	  "$$helm" template hwcap $(CHART) --namespace hwcap-system --values "$$values" --kube-version "$$kube" \
	    --api-versions monitoring.coreos.com/v1 >/dev/null || exit 1; \
	done

## The main job: local control plane + chart + operator + agent, nodes from real arm64 dumps, example domains, an
## injected pod, a migration check. Stays up (detached) until `make demo-down`. Builds binaries on first use.
demo: system-packages venv shim
	$(BIN)/hwcap-dev demo up

demo-down: venv
	$(BIN)/hwcap-dev demo down

## The whole test suite, as CI runs it from a clean clone (.ci/run calls exactly this).
test: system-packages venv lint shim binaries
	$(BIN)/pytest

## Kernel conformance lab (tests/kernel): build the lab's kernels, or run the full CPU-model matrix.
kernels: system-packages venv
	cd tests/kernel && ../../$(BIN)/python -m kernellab kernels

conformance: system-packages venv
	cd tests/kernel && ../../$(BIN)/python -m kernellab matrix

## Benchmarks (never part of `make test`; ~15 min on 2 cores): the in-memory view, hwcap-exec and the exec model,
## the real operator against a real apiserver at 500-5,000 nodes, and the webhook's (bench-webhook) when present.
## Each figure is printed with its ratio to a baseline measured in the same run; all go to
## bench/results/<date>.json, the convergence plot to docs/img/. See docs/performance.md.
bench: venv shim binaries
	$(BIN)/python -m bench.bench_scale
	$(BIN)/python -m bench.bench_exec
	$(BIN)/python -m bench.bench_operator
	@if grep -q '^bench-webhook:' $(firstword $(MAKEFILE_LIST)); then $(MAKE) bench-webhook; fi

## Webhook benchmark (~6 min): the real webhook vs a bare aiohttp echo over TLS on loopback (wrk closed loop, a Go
## open-loop client at 100-1,000 req/s, interleaved rounds), and pod-create latency through the dev cluster's
## apiserver with and without the webhook. bench/results/<date>-webhook.json, docs/img/webhook-latency.png,
## docs/performance-webhook.md.
.PHONY: bench-webhook
bench-webhook: system-packages venv binaries
	$(BIN)/python -m bench.bench_webhook
	$(BIN)/python -m bench.bench_podcreate

## Fault and bad-input classes, counted: every class in $(RELIABILITY_TESTS) at full scale (>= 50 operator SIGKILLs,
## >= 1,000 fuzz cases per input class, ...); each writes its result to build/reliability/, rendered into the table
## of docs/reliability.md. `make test` runs the same tests with small counts (the CI subset).
RELIABILITY_TESTS ?= tests/reliability
reliability: system-packages venv shim binaries
	rm -rf build/reliability
	HWCAP_RELIABILITY=full $(BIN)/pytest -p no:cacheprovider $(RELIABILITY_TESTS); status=$$?; \
	$(BIN)/python -m hwcap_dev.reliability render && exit $$status

## The fast lane: every test that needs no built binary (control plane, helm, hwcap-exec, a compiler), no qemu
## and no root; minutes, not the half hour of `make test`.
unit: venv
	$(BIN)/pytest -m "not e2e and not kernel and not needs_binaries and not needs_root"

## The operator image without an engine (OCI index linux/amd64 + linux/arm64, CycloneDX SBOM), assembled from
## Debian's Python .debs and the wheels, then run: amd64 in a chroot (root), arm64 under qemu-aarch64-static.
## Opt-in: ~3 min cold (downloads cached in ~/.cache/hwcap-operator/images/operator), ~1.5 min warm.
images-operator: system-packages venv
	$(BIN)/pytest -p no:cacheprovider tests/unit/test_images_operator.py

.PHONY: images-operator
clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
