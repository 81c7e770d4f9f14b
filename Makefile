# The two newcomer commands: `make demo` (set up, then run the main job on built-in synthetic data)
# and `make test` (set up, then lint and run the test suite). Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.islr-installed

.PHONY: demo test test-fast lint web web-if-npm bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	# torch first and pinned: an unpinned torch pulls several GB of CUDA packages
	$(BIN)/python -m pip install torch==2.13.0
	$(BIN)/python -m pip install -e ".[video,dev]"
	touch $@

demo: $(STAMP)
	$(BIN)/islr demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(STAMP) lint web-if-npm
	$(BIN)/python -m pytest -q

# The web page's vendored assets (MediaPipe Holistic, onnxruntime-web) from npm: web/build.sh.
WEB_STAMP := islr/serving/static/vendor/VERSIONS.json
web: $(WEB_STAMP)

$(WEB_STAMP): web/package.json web/package-lock.json web/build.sh
	bash web/build.sh

# For `make test`: build them when npm exists; otherwise the browser tests skip and say why.
web-if-npm:
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory web \
		|| echo "warning: web assets not built (web/build.sh failed); browser tests will skip"; \
	else echo "npm not found: web assets not built; browser tests will skip"; fi

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not browser"

clean:
	rm -rf $(VENV) demo-out .pytest_cache
