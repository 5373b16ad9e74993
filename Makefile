# Two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test venv clean bench eval

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(BIN)/activate pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

$(VENV)/.installed-bench: $(BIN)/activate pyproject.toml
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $@

venv: $(VENV)/.installed

demo: $(VENV)/.installed
	@echo "== Where else does this story appear? (query examples/query-story.txt against examples/wire.jsonl)"
	$(BIN)/neardup query --corpus examples/wire.jsonl examples/query-story.txt
	@echo
	@echo "== What repeats inside this page? (examples/repeated-page.txt)"
	$(BIN)/neardup repeats examples/repeated-page.txt

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

eval: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/eval_syndication.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .hypothesis
