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

.PHONY: help install proto run test test-unit drills lint fmt bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

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

test: install  ## the whole suite but the slow fault drills (REGFED_TEST_DSN, else an embedded PostgreSQL)
	$(VENV)/bin/pytest -q -m "not drill"

drills: install  ## every fault drill (tests/drills): outages, overload, shutdown, fuzz; a few minutes
	$(VENV)/bin/pytest -q tests/drills

test-unit: install  ## pure logic and the use cases over fakes: no PostgreSQL, no server
	$(VENV)/bin/pytest -q -m unit

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
