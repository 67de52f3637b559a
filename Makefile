# aimesh: `make demo` runs the main job offline, `make test` runs every check.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
QUESTION ?= Which of our clients are most likely to churn, and why?
# pip compiles llama.cpp (llama-cpp-python) here. A portable AVX2 build: a native build on a
# CPU with AMX (Xeon Sapphire Rapids and later) segfaults in ggml's AMX matmul on some VMs.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: demo install test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

demo: install
	$(BIN)/aimesh ask "$(QUESTION)"

lint: $(VENV)/.installed-test
	$(BIN)/ruff check aimesh tests bench
	$(BIN)/ruff format --check aimesh tests bench
	$(BIN)/mypy aimesh

test: lint
	$(BIN)/python -m pytest

# LiteLLM, compared with the provider chain in bench/provider_chain.py, pins an older openai
# SDK than langchain-openai needs: it lives in a virtual environment of its own.
LITELLM := bench/.venv-litellm
$(LITELLM)/.installed: bench/litellm-requirements.txt
	$(PYTHON) -m venv $(LITELLM)
	$(LITELLM)/bin/pip install --quiet -r bench/litellm-requirements.txt
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
	$(BIN)/python bench/provider_chain.py --litellm-python $(LITELLM)/bin/python

clean:
	rm -rf $(VENV) build *.egg-info
