# The two commands of the README:
#   make run    the main job
#   make test   the whole test suite (type check included)
# Both create .venv and install the project into it on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: $(BIN)/.installed
	$(BIN)/wxcallback serve --config examples/wxcallback.toml

test: $(BIN)/.installed
	$(BIN)/mypy
	$(BIN)/pytest

bench: $(BIN)/.installed
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/bench_crypto.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .hypothesis
