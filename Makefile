# `make demo`: set up .venv, train on Tiny Shakespeare for a few minutes, then sample.
# `make test`: set up .venv with the test extra and run the default suite (CI runs it, then `make test-sweep`: the forecast demos and the speed scripts).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# TensorFlow comes with the `train` extra (the core installs without it); a machine with an NVIDIA
# driver also gets CUDA's libraries from PyPI (the `cuda` extra).
EXTRAS := train,test,plot,tensorboard,serve,export,sweep$(shell command -v nvidia-smi >/dev/null 2>&1 && echo ,cuda)
# Tests and the demo find Tiny Shakespeare in ../shared/corpora when it is there; else it is downloaded.
SHARED_CORPORA := $(abspath ../shared/corpora)
export CHARRNN_CORPUS_PATH ?= $(if $(wildcard $(SHARED_CORPORA)),$(SHARED_CORPORA),)
export TF_CPP_MIN_LOG_LEVEL ?= 2
DEMO_SECONDS ?= 180

.PHONY: venv demo test test-fast test-sweep bench docs clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

demo: venv
	$(BIN)/charrnn train tinyshakespeare --out runs/tinyshakespeare --time-budget $(DEMO_SECONDS) --force
	$(BIN)/charrnn sample runs/tinyshakespeare --length 500 --temperature 0.8 --seed 1

test: venv
	$(BIN)/python -m pytest

test-fast: venv
	$(BIN)/python -m pytest -m "not slow and not sweep and not bench"

test-sweep: venv
	$(BIN)/python -m pytest -m "sweep or bench"

bench: venv
	$(BIN)/python bench/run_all.py --write docs/benchmarks.md

# docs/cli.md from the click commands (tests/test_docs.py checks that it is up to date)
docs: venv
	$(BIN)/python -m charrnn.cli.reference --write docs/cli.md

clean:
	rm -rf $(VENV) runs .pytest_cache
