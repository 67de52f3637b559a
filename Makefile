# aimesh: `make demo` runs the main job offline, `make test` runs every check.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
QUESTION ?= Which of our clients are most likely to churn, and why?
# pip compiles llama.cpp (llama-cpp-python) here. A portable AVX2 build: a native build on a
# CPU with AMX (Xeon Sapphire Rapids and later) segfaults in ggml's AMX matmul on some VMs.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: demo install lock test lint bench clean

# Installs come from the lock files (every package pinned, with hashes), so a fresh clone gets
# exactly what CI tested; `make lock` re-resolves them from pyproject.toml (a deliberate commit).
BOOTSTRAP := pip==26.3 setuptools==84.2.1 wheel==0.48.0
UV_COMPILE := $(BIN)/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes \
	--find-links /opt/wheels --quiet

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(BOOTSTRAP)

$(VENV)/.installed: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.installed-test: requirements-test.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements-test.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

# The CPU build of torch that pyproject.toml pins lies in /opt/wheels on this kind of machine.
lock: | $(BIN)/python
	$(BIN)/pip install --quiet uv==0.13.9
	$(UV_COMPILE) -o requirements.lock
	$(UV_COMPILE) --extra test -c requirements.lock -o requirements-test.lock
	$(BIN)/uv pip compile bench/litellm-requirements.in --python-version 3.11 --generate-hashes \
		--quiet -o bench/litellm-requirements.txt

demo: install
	$(BIN)/aimesh ask "$(QUESTION)"

lint: $(VENV)/.installed-test
	$(BIN)/ruff check aimesh tests bench
	$(BIN)/ruff format --check aimesh tests bench
	$(BIN)/mypy aimesh

test: lint
	$(BIN)/python -m pytest

# LiteLLM, compared with the provider chain in bench/provider_chain.py, lives in a virtual
# environment of its own (locked in bench/litellm-requirements.txt), so its pins never move ours.
LITELLM := bench/.venv-litellm
$(LITELLM)/.installed: bench/litellm-requirements.txt
	$(PYTHON) -m venv $(LITELLM)
	$(LITELLM)/bin/pip install --quiet --require-hashes -r bench/litellm-requirements.txt
	touch $@

# bench/api_service.py drives its load with wrk (Debian package).
bench: install $(LITELLM)/.installed
	command -v wrk >/dev/null || apt-get install -y wrk
	$(BIN)/python bench/ml_latency.py
	$(BIN)/python bench/local_model.py
	$(BIN)/python bench/coordinator_routing.py
	$(BIN)/python bench/ask_e2e.py
	$(BIN)/python bench/api_service.py
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/portfolio.py
	$(BIN)/python bench/provider_chain.py --litellm-python $(LITELLM)/bin/python

clean:
	rm -rf $(VENV) build *.egg-info
