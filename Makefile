# `make demo` and `make test` each set up everything they need from nothing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: test demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[test]"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

demo: $(STAMP)
	$(VENV)/bin/gensvc demo

bench: $(STAMP)
	$(PY) bench/frequencies.py
	$(PY) bench/ratelimit.py

clean:
	rm -rf $(VENV) .gensvc .snakemake results .pytest_cache
