# Two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint venv clean bench eval browser

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/activate pyproject.toml setup.py src/neardup/_kernel.c src/neardup/_pairs.c
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(BIN)/activate pyproject.toml setup.py src/neardup/_kernel.c src/neardup/_pairs.c
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

$(VENV)/.installed-bench: $(BIN)/activate pyproject.toml setup.py src/neardup/_kernel.c src/neardup/_pairs.c
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $@

$(VENV)/.installed-lint: $(BIN)/activate pyproject.toml
	$(BIN)/pip install --quiet -e '.[test,lint]'
	touch $@

venv: $(VENV)/.installed

demo: $(VENV)/.installed
	@rm -rf .demo && mkdir -p .demo
	@echo "== Index the bundled corpus (examples/wire.jsonl: 5 invented wire stories, 17 outlet copies, 4 others)"
	$(BIN)/neardup index .demo/news.idx examples/wire.jsonl
	@echo
	@echo "== Where else does this story appear? (examples/query-story.txt)"
	$(BIN)/neardup query .demo/news.idx examples/query-story.txt
	@echo
	@echo "== One document per story (kept: .demo/kept.jsonl, clusters: .demo/clusters.jsonl)"
	$(BIN)/neardup dedup examples/wire.jsonl --out .demo/kept.jsonl --clusters .demo/clusters.jsonl
	@echo
	@echo "== What repeats inside this page? (examples/repeated-page.txt)"
	$(BIN)/neardup repeats examples/repeated-page.txt

# Chromium for tests/test_page.py. Installed with apt when missing and we may (root on Debian);
# otherwise the page tests say what is missing (and fail under CI=true, so CI cannot skip them).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-dejavu-core; } \
	  || echo "make browser: chromium not installed (not root or no apt-get); the page tests will skip"; }

test: $(VENV)/.installed-test browser
	$(BIN)/python -m pytest

# ruff (style and errors) and mypy --strict (types) on the code, as CI runs them.
lint: $(VENV)/.installed-lint
	$(BIN)/ruff check src tests benchmarks setup.py
	$(BIN)/mypy

eval: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/eval_syndication.py

clean:
	rm -rf $(VENV) .demo build src/*.egg-info .pytest_cache .hypothesis
