# One entry point for every gate. `make test` works on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
JS_STAMP := tests/js/node_modules/.installed
BROWSER_STAMP := tests/browser/node_modules/.installed
CHROMIUM ?= /usr/bin/chromium
APP ?= examples.echo.app:app

.PHONY: test check run install format lint typecheck imports pytest coverage docs bench clean

test: install check

install: $(STAMP) $(JS_STAMP) $(BROWSER_STAMP) $(CHROMIUM)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@# The distribution was called trio-engineio, which is another project's name on PyPI: remove it first.
	$(PY) -m pip uninstall -q -y trio-engineio 2>/dev/null
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

$(JS_STAMP): tests/js/package.json tests/js/package-lock.json
	cd tests/js && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# playwright-core drives Debian's Chromium in tests/browser; it never downloads a browser.
$(BROWSER_STAMP): tests/browser/package.json tests/browser/package-lock.json
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Only when it is missing; sudo only when not root.
$(CHROMIUM):
	SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	$$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
	test -x $@

check: format lint typecheck imports docs coverage

format:
	$(PY) -m ruff format --check .

lint:
	$(PY) -m ruff check .

typecheck:
	$(PY) -m mypy trio_engineio tests examples benchmarks

imports:
	$(VENV)/bin/lint-imports

pytest:
	$(PY) -m pytest -q

coverage:
	$(PY) -m coverage erase
	$(PY) -m coverage run -m pytest -q
	$(PY) -m coverage report --include='trio_engineio/protocol/*' --fail-under=100

docs:
	$(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html

# `make run APP=examples.chat.app:app` serves another example (docs/examples.rst). The pages load
# the JS client bundle the package ships (trio_engineio/_static): no npm, no network.
run: $(STAMP)
	$(VENV)/bin/hypercorn --worker-class trio --bind 127.0.0.1:8000 $(APP)

# The layer alone, then every scenario of the per-session cost issue against python-engineio and the
# raw stack (benchmarks/all.py, about 20 minutes; results in benchmarks/results/). BENCH_ARGS=--quick: a smoke run.
bench: install
	$(PY) benchmarks/layer.py
	$(PY) benchmarks/all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) tests/js/node_modules tests/browser/node_modules tests/browser/artifacts .coverage docs/_build
