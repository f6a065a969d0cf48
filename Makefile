# socketio_sync: the two commands a newcomer needs.
#
#   make run    serve the chat example on http://127.0.0.1:5000 (HOST=... PORT=... to change)
#   make test   run the whole test suite (PYTEST_ARGS=... to pass options to pytest)
#
# Both set up what they need first (.venv, npm packages) and skip that when it is done:
# stamp files record each finished step and are redone when their inputs change.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 5000
PYTEST_ARGS ?=

PY_STAMP := $(VENV)/.installed-test
CHAT_STAMP := examples/chat/node_modules/.npm-ci-done
JS_STAMP := tests/js/node_modules/.npm-ci-done

.DEFAULT_GOAL := help
.PHONY: help run test venv npm clean

help:
	@echo "make run    serve the chat example on http://$(HOST):$(PORT) (open two tabs)"
	@echo "make test   run the whole test suite"
	@echo "make clean  remove .venv and the npm packages"

run: $(PY_STAMP) $(CHAT_STAMP)
	$(PY) examples/chat/app.py $(HOST) $(PORT)

test: $(PY_STAMP) $(CHAT_STAMP) $(JS_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

venv: $(PY_STAMP)

npm: $(CHAT_STAMP) $(JS_STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

# The editable install, with the test extra; redone when the package metadata changes.
$(PY_STAMP): setup.cfg setup.py | $(PY)
	$(PY) -m pip install --disable-pip-version-check -q -e '.[test]'
	@touch $@

# `npm ci` removes node_modules first, so a stamp inside it goes away with it.
# Without npm, outside CI, the step is left out and the JS/browser tests fail, saying so.
define npm_ci
	@if command -v npm >/dev/null 2>&1; then \
		echo "npm ci in $(1)"; \
		(cd $(1) && npm ci --no-audit --no-fund --loglevel=error) && touch $(2); \
	elif [[ "$${CI:-}" =~ ^(1|[Tt]rue|TRUE|[Yy]es)$$ ]]; then \
		echo "npm is not installed (CI=true: that is an error)" >&2; exit 1; \
	else \
		echo "warning: npm is not installed; skipping npm ci in $(1) (its tests will fail)" >&2; \
	fi
endef

$(CHAT_STAMP): examples/chat/package.json examples/chat/package-lock.json
	$(call npm_ci,examples/chat,$@)

$(JS_STAMP): tests/js/package.json tests/js/package-lock.json
	$(call npm_ci,tests/js,$@)

clean:
	rm -rf $(VENV) examples/chat/node_modules tests/js/node_modules
