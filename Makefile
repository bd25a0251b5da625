# regfed: `make run` serves the demo, `make test` runs the suite. Everything lands in .venv
# and .regfed/ (both git-ignored); nothing is installed system-wide.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
# Every package of the development environment, pinned: `make lock` refreshes it.
CONSTRAINTS := constraints.txt
# dev: tests and linters (and the demo and cli extras); ci: the release gates' tools.
EXTRAS := dev,ci
PROTOS := $(wildcard protos/regfed/v1/*.proto)
GENERATED := src/regfed/v1/certificate_service_pb2.py
LINT_PATHS := src tests tools setup.py $(wildcard bench)
KUBECTL ?= kubectl
# Kubernetes versions the manifests are validated against: the oldest supported (native
# gRPC probes are GA from 1.27) and the newest kubernetes-validate knows.
K8S_VERSIONS ?= 1.28 1.37

# test-lowest's throwaway copy of the work tree, with its own virtualenv (under .regfed/).
LOWEST := .regfed/lowest

.PHONY: help install proto run test test-unit test-lowest drills lint fmt bench lock wheel-check contract deploy-check clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml setup.py $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --constraint $(CONSTRAINTS) -e '.[$(EXTRAS)]'
	touch $@

# The same generator the wheel build runs (setup.py), here into src/ for the editable install.
$(GENERATED): $(PROTOS) tools/protogen.py $(INSTALLED)
	$(PY) tools/protogen.py src
	touch $@

install: $(INSTALLED) $(GENERATED)  ## create the virtualenv, install regfed, generate the gRPC code

proto: $(GENERATED)  ## regenerate the gRPC code from protos/

run: install  ## serve the demo on 127.0.0.1:50051 (embedded PostgreSQL, demo people, dev key)
	$(VENV)/bin/regfed serve

test: install  ## the whole suite but the slow fault drills (REGFED_TEST_DSN, else an embedded PostgreSQL)
	$(VENV)/bin/pytest -q -m "not drill"

drills: install  ## every fault drill (tests/drills): outages, overload, shutdown, fuzz; a few minutes
	$(VENV)/bin/pytest -q tests/drills

test-unit: install  ## pure logic and the use cases over fakes: no PostgreSQL, no server
	$(VENV)/bin/pytest -q -m unit

# The lower bounds in pyproject.toml are a promise: install exactly them (uv's
# lowest-direct: each direct dependency at its lowest allowed version) in a copy of the
# work tree, generate the gRPC code with that grpcio-tools, and run the unit tests there.
# A bound the code has outgrown fails here instead of in a user's install.
test-lowest:  ## unit tests on the lowest dependency versions pyproject.toml allows
	rm -rf $(LOWEST) && mkdir -p $(LOWEST)
	git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t $(LOWEST)
	$(PYTHON) -m venv $(LOWEST)/$(VENV)
	$(LOWEST)/$(VENV)/bin/pip install --quiet uv
	cd $(LOWEST) && $(VENV)/bin/uv pip install --quiet --python $(VENV)/bin/python \
	  --resolution lowest-direct -e '.[dev]'
	$(LOWEST)/$(VENV)/bin/uv pip list --python $(LOWEST)/$(VENV)/bin/python \
	  | grep -E '^(asyncpg|cbor2|click|cryptography|googleapis-common-protos|grpcio[a-z-]*|pillow|pgserver|protobuf|pydantic|qrcode|zxing-cpp) '
	touch $(LOWEST)/$(INSTALLED)  # installed above: `make proto` there must not reinstall
	$(MAKE) -C $(LOWEST) proto
	cd $(LOWEST) && $(VENV)/bin/pytest -q -p no:cacheprovider --strict-config tests/unit

lint: install  ## ruff and mypy
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy

fmt: install  ## format the code
	$(VENV)/bin/ruff format $(LINT_PATHS)
	$(VENV)/bin/ruff check --fix $(LINT_PATHS)

bench: install  ## benchmark: 100,000 people; echo baseline, Issue, Issue+PNG, Verify -> bench/results/
	$(PY) bench/run.py $(BENCH_ARGS)

lock:  ## refresh constraints.txt: the newest versions pyproject.toml allows (then run make test)
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet --upgrade pip
	.venv-lock/bin/pip install --quiet -e '.[$(EXTRAS)]'
	{ echo "# The development environment, pinned (pip freeze). Refresh: make lock."; \
	  .venv-lock/bin/pip freeze --all --exclude-editable | grep -v '^pip=='; } > $(CONSTRAINTS)
	rm -rf .venv-lock

wheel-check: install  ## build sdist and wheel, check their contents, run the wheel in a fresh virtualenv
	$(PY) tools/check_wheel.py

contract: install  ## buf lint the protos; buf breaking against the last release tag, else HEAD~1
	$(VENV)/bin/buf lint
	tools/buf_breaking.sh $(VENV)/bin/buf

deploy-check: install  ## hadolint the Dockerfile; render the k8s production overlay and validate it
	$(VENV)/bin/hadolint Dockerfile
	mkdir -p build
	$(KUBECTL) kustomize deploy/k8s/overlays/production > build/k8s-production.yaml
	for version in $(K8S_VERSIONS); do \
	  $(VENV)/bin/kubernetes-validate --strict --kubernetes-version $$version \
	    build/k8s-production.yaml || exit 1; \
	done

clean:  ## remove the virtualenv, generated code and build output (keeps .regfed/: keys and the database)
	rm -rf $(VENV) src/regfed/v1/*_pb2*.py src/regfed/v1/*_pb2*.pyi src/regfed/protos \
	  build dist .pytest_cache .mypy_cache .ruff_cache
