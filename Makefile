# regfed: `make run` serves the demo, `make test` runs the suite. Everything lands in .venv
# and .regfed/ (both git-ignored); nothing is installed system-wide.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
PROTOS := $(wildcard protos/regfed/v1/*.proto)
GENERATED := src/regfed/v1/certificate_service_pb2.py
LINT_PATHS := src tests $(wildcard bench)

# test-lowest's throwaway copy of the work tree, with its own virtualenv (under .regfed/).
LOWEST := .regfed/lowest

.PHONY: help install proto run test test-unit test-lowest lint fmt bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

$(GENERATED): $(PROTOS) $(INSTALLED)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m grpc_tools.protoc -I protos \
	  -I "$$($(PY) -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')" \
	  --python_out=src --grpc_python_out=src --mypy_out=src --mypy_grpc_out=src $(PROTOS)
	touch $@

install: $(INSTALLED) $(GENERATED)  ## create the virtualenv, install regfed, generate the gRPC code

proto: $(GENERATED)  ## regenerate the gRPC code from protos/

run: install  ## serve the demo on 127.0.0.1:50051 (embedded PostgreSQL, demo people, dev key)
	$(VENV)/bin/regfed serve

test: install  ## the whole suite (REGFED_TEST_DSN, else an embedded PostgreSQL)
	$(VENV)/bin/pytest -q

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

clean:  ## remove the virtualenv and generated code (keeps .regfed/: keys and the database)
	rm -rf $(VENV) src/regfed/v1/*_pb2*.py src/regfed/v1/*_pb2*.pyi .pytest_cache .mypy_cache .ruff_cache
