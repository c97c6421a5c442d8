# gridgov: two commands on a fresh machine with python3 (venv) and make.
#   make demo   build the demo city into var/gridgov.db and serve it at http://127.0.0.1:8000
#   make test   lint, type-check and run the whole test suite

PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck pytest serve bench clean

# The XStatic sdists import pkg_resources in setup.py, which setuptools 81 removed: build them
# without isolation against a setuptools that still has it, then install gridgov as usual.
$(VENV)/.base: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "setuptools>=69,<81" wheel
	$(BIN)/python -m pip install --quiet --no-build-isolation "xstatic>=1.0,<2" "xstatic-bootstrap>=5.3,<6" "xstatic-leaflet>=1.9,<2"
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.dev: $(VENV)/.base
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

demo: $(VENV)/.base
	$(BIN)/gridgov demo

serve: $(VENV)/.base
	$(BIN)/gridgov serve

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

typecheck: $(VENV)/.dev
	$(BIN)/mypy

pytest: $(VENV)/.dev
	$(BIN)/python -m pytest

test: lint typecheck pytest

bench: $(VENV)/.dev
	$(BIN)/python benchmarks/locate.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
