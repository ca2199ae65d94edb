# The two commands of the README:
#   make run    the main job: installs what serving needs (the `server` extra), then serves
#   make test   the whole test suite (type check included): installs the test toolchain
# Both create .venv and install the project into it on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test bench clean

$(BIN)/python:
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
