# ayakit: `make demo` runs the embedded recipe end to end; `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev
TEST_EXTRAS ?= dev,ray
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: install demo test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Torch first: a plain `torch` requirement resolved later would pull a multi-GB CUDA build.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

# The suite also runs the Ray executor tests: the ray extra on top.
$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e ".[$(TEST_EXTRAS)]"
	touch $(TEST_STAMP)

install: $(STAMP)

demo: install
	$(BIN)/ayakit run recipes/demo.yaml

test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf runs .pytest_cache
