# `make demo` and `make test` each set up everything they need from nothing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
OC_VENV := .venv-oc

.PHONY: test test-unit demo bench reliability clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[test]"
	touch $(STAMP)

# the real OpenCRAVAT server, a test peer, lives in a venv of its own; SLURM (slurm-wlm,
# munge) comes from apt, for tests/test_slurm.py's single-node cluster
test: $(STAMP)
	bash tests/peers/setup_opencravat.sh $(OC_VENV)
	bash tests/peers/setup_slurm.sh
	$(PY) -m pytest

# the in-process layer alone (no servers, no subprocess CLI): well under 30 s
test-unit: $(STAMP)
	$(PY) -m pytest tests/unit

demo: $(STAMP)
	$(VENV)/bin/gensvc demo

bench: $(STAMP)
	$(PY) bench/frequencies.py
	$(PY) bench/ratelimit.py
	$(PY) bench/poll.py
	$(PY) bench/merge.py
	$(PY) bench/transfer.py

# the whole reliability matrix (make test runs a fast subset of it): the matrix printed, docs/reliability.md
# written (also when cells failed: then the report, and so make, exits 1)
RELIABILITY_RESULTS := .gensvc/reliability.jsonl
reliability: $(STAMP)
	bash tests/peers/setup_opencravat.sh $(OC_VENV)
	mkdir -p .gensvc && rm -f $(RELIABILITY_RESULTS)
	-GENSVC_RELIABILITY=full GENSVC_RELIABILITY_RESULTS=$(CURDIR)/$(RELIABILITY_RESULTS) $(PY) -m pytest tests/reliability -q --durations=10
	$(PY) tests/reliability/report.py $(RELIABILITY_RESULTS) docs/reliability.md

clean:
	rm -rf $(VENV) $(OC_VENV) .gensvc .snakemake results .pytest_cache
