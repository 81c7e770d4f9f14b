# The newcomer commands: `make serve` (set up the light install, serve the shipped model and its
# web page), `make test` (set up the full install, lint, run the tests) and `make demo` (train on
# built-in synthetic data). Each creates .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORE_STAMP := $(VENV)/.islr-core
STAMP := $(VENV)/.islr-installed
MODEL ?= include50
# torch goes in first and pinned. From the default index a Linux torch is the multi-GB CUDA build;
# set TORCH_INDEX to PyTorch's CPU-only index (pytorch.org's install selector) to get the CPU one.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=

.PHONY: pretrained serve demo test test-fast lint lint-js web web-if-npm wheel ci-wheel ci-py312 ci-py313 clean

# The light install: predict, serve, evaluate with ONNX Runtime. No torch, no MediaPipe.
$(CORE_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e .
	touch $@

# Everything: training ([train]), video extraction ([video]), tests and linters ([dev]), Ray ([ray]).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) $(TORCH_SPEC)
	$(BIN)/python -m pip install -e ".[train,video,dev,ray,gislr]"
	touch $@ $(CORE_STAMP)

# The page runs MediaPipe in the browser and the model in onnxruntime-web: the light install and
# the page's assets are all it needs. Without npm it still serves, and says what is missing.
serve: $(CORE_STAMP) web-if-npm
	$(BIN)/islr serve $(MODEL)

demo: $(STAMP)
	$(BIN)/islr demo

# The shipped model (islr/pretrained/include50.*) from ../shared/data/include50: scripts/make_pretrained.py.
pretrained: $(STAMP)
	$(BIN)/python scripts/make_pretrained.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(STAMP) lint web-if-npm lint-js
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not browser"

# The web page's vendored assets (MediaPipe Holistic, onnxruntime-web) from npm: web/build.sh.
WEB_STAMP := islr/serving/static/vendor/VERSIONS.json
web: $(WEB_STAMP)

$(WEB_STAMP): web/package.json web/package-lock.json web/build.sh
	bash web/build.sh

# Build them when npm exists; without npm, say so (the browser and Node tests then skip), except
# under CI=true, where that is an error: CI must run every test.
web-if-npm:
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory web; \
	elif [ "$$CI" = true ]; then echo "error: npm not found (CI=true needs the web assets)"; exit 1; \
	else echo "npm not found: web assets not built; browser tests will skip"; fi

# ESLint over the page's own JS (web/eslint.config.js), installed by npm with the assets.
web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error

lint-js:
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory web/node_modules/.package-lock.json \
		&& web/node_modules/.bin/eslint --config web/eslint.config.js --max-warnings 0 islr/serving/static/*.js tests/parity/*.mjs; \
	elif [ "$$CI" = true ]; then echo "error: npm not found (CI=true runs ESLint)"; exit 1; \
	else echo "npm not found: ESLint not run"; fi

# A wheel that carries the page's assets, so a pip user without npm gets a working page.
wheel: web $(CORE_STAMP)
	rm -rf build dist  # a stale build/ could hide missing assets
	$(BIN)/python -m pip wheel --no-deps --wheel-dir dist .
	$(BIN)/python .ci/check_wheel.py dist/islr-*.whl

# The wheel installed into a fresh venv without torch, npm off PATH: `islr serve` answers / and a
# vendored asset with 200.
WHEEL_MODEL ?= $(MODEL)
ci-wheel: wheel
	bash .ci/wheel_serve.sh dist/islr-*.whl $(WHEEL_MODEL)

# Other Pythons (pyenv's when present; override with PY312=/path/to/python3.12).
PYENV_ROOT := $(shell pyenv root 2>/dev/null || echo $$HOME/.pyenv)
PY312 ?= $(lastword $(wildcard $(PYENV_ROOT)/versions/3.12*/bin/python))
PY313 ?= $(lastword $(wildcard $(PYENV_ROOT)/versions/3.13*/bin/python))
SAMPLE ?= $(firstword $(wildcard ../shared/data/include50/val/*.json))

# Python 3.12, core + [video] + [dev], no torch (from the default index it would be the
# multi-GB CUDA build): the fast suite, the torch tests skipping with their reason.
.venv-py312/.islr-installed: pyproject.toml
	@test -n "$(PY312)" || { echo "error: no Python 3.12 (looked in $(PYENV_ROOT)/versions); set PY312=/path/to/python3.12"; exit 1; }
	$(PY312) -m venv .venv-py312
	.venv-py312/bin/python -m pip install -q --upgrade pip
	.venv-py312/bin/python -m pip install -q -e ".[video,dev,ray,gislr]"
	touch $@

ci-py312: .venv-py312/.islr-installed
	.venv-py312/bin/python -m pytest -q -m "not slow and not browser"

# Python 3.13, the core install only (numpy 2; MediaPipe has no 3.13 wheels): `islr predict`.
.venv-py313/.islr-installed: pyproject.toml
	@test -n "$(PY313)" || { echo "error: no Python 3.13 (looked in $(PYENV_ROOT)/versions); set PY313=/path/to/python3.13"; exit 1; }
	$(PY313) -m venv .venv-py313
	.venv-py313/bin/python -m pip install -q --upgrade pip
	.venv-py313/bin/python -m pip install -q -e .
	touch $@

ci-py313: .venv-py313/.islr-installed
	.venv-py313/bin/islr --help >/dev/null
	@if [ -z "$(SAMPLE)" ]; then echo "ci-py313: ../shared/data/include50/val is absent: islr predict not run"; \
	else echo ".venv-py313/bin/islr predict $(MODEL) $(SAMPLE)"; .venv-py313/bin/islr predict $(MODEL) $(SAMPLE); fi

clean:
	rm -rf $(VENV) .venv-py312 .venv-py313 dist demo-out .pytest_cache
