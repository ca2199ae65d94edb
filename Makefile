# The two commands of the README:
#   make run    the main job: installs what serving needs (the `server` extra), then serves
#   make test   the whole test suite (type check included): installs the test toolchain
# Both create .venv and install the project into it on first use.

# The interpreter for .venv: the distribution's python3 when it is 3.10 or newer and can make a
# venv, else the first python3 on PATH; `make PYTHON=...` picks another. Debian, Ubuntu and
# Fedora build CPython with profile-guided and link-time optimisation; pyenv and a plain
# ./configure do not unless asked (PYTHON_CONFIGURE_OPTS="--enable-optimizations --with-lto"),
# and on such a build the server needed a quarter more CPU per request (docs/deployment.md).
SYSTEM_PYTHON ?= /usr/bin/python3
ifndef PYTHON
PYTHON := $(shell $(SYSTEM_PYTHON) -c 'import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 10))' \
	>/dev/null 2>&1 && echo $(SYSTEM_PYTHON) || echo python3)
endif
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test bench clean python

$(BIN)/python:
	@echo "creating $(VENV) with $(PYTHON) ($$($(PYTHON) --version 2>&1))"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Serving: Starlette, uvicorn, httpx, prometheus-client. The example configuration uses the
# SQLite store, which needs nothing more.
$(BIN)/.installed-server: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[server]'
	touch $@

# Testing: everything above plus the frameworks, Redis client, wechatpy, pytest, mypy. The
# fuzzer (atheris) only has wheels for Linux x86_64 and its sdist needs libFuzzer, so it is
# added only where it installs; without it the fuzz tests skip, except in CI
# (WXCALLBACK_CI=1), where a missing fuzzer fails the install.
$(BIN)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	@if $(BIN)/pip install --quiet -e '.[fuzz]' >$(VENV)/fuzz-install.log 2>&1; then \
	    echo "atheris installed: the fuzz tests run"; \
	elif [ -n "$$WXCALLBACK_CI" ]; then \
	    cat $(VENV)/fuzz-install.log; echo "atheris did not install, and CI needs it"; exit 1; \
	else \
	    echo "atheris does not install here (see $(VENV)/fuzz-install.log): the fuzz tests will skip"; \
	fi
	touch $(BIN)/.installed-server $@

run: $(BIN)/.installed-server
	$(BIN)/wxcallback serve --config examples/wxcallback.toml

test: $(BIN)/.installed
	$(BIN)/mypy
	$(BIN)/pytest

bench: $(BIN)/.installed
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/bench_crypto.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .hypothesis

# The interpreter a new .venv is made with (see PYTHON above).
python:
	@echo $(PYTHON)
