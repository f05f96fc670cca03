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

# every benchmark, each appending its figures to one results file, then docs/performance.md
# from it; one that fails is named in the table as missing, and the others still run (-).
# `make bench QUICK=1`: smaller inputs (for a busy machine), said so in the table.
BENCH_RESULTS := .gensvc/bench.jsonl
BENCH_RUN = GENSVC_BENCH_RESULTS=$(CURDIR)/$(BENCH_RESULTS) $(PY)
ifdef QUICK
BENCH_MERGE := --variants 200000 --repeat 1
BENCH_TRANSFER := --size-mb 128
BENCH_REGION := --mb 1
BENCH_MODE := --mode "quick (make bench QUICK=1): merge of 200,000 records run once, transfer of 128 MiB, bravo region over 1 Mb"
endif
bench: $(STAMP)
	mkdir -p .gensvc docs && rm -f $(BENCH_RESULTS)
	-$(BENCH_RUN) bench/frequencies.py
	-$(BENCH_RUN) bench/ratelimit.py
	-$(BENCH_RUN) bench/poll.py
	-$(BENCH_RUN) bench/merge.py $(BENCH_MERGE)
	-$(BENCH_RUN) bench/transfer.py $(BENCH_TRANSFER)
	-$(BENCH_RUN) bench/region_memory.py $(BENCH_REGION)
	-$(BENCH_RUN) bench/startup.py
	$(PY) bench/write_table.py $(BENCH_RESULTS) docs/performance.md $(BENCH_MODE) \
	  --expect frequencies ratelimit poll merge transfer region_memory startup

# the whole reliability matrix (make test runs a fast subset of it): the matrix printed, docs/reliability.md
# written (also when cells failed: then the report, and so make, exits 1)
# Cells mostly wait (timeouts, backoff, jobs), so RELIABILITY_WORKERS pytest workers share the cores
# (pytest-xdist), a test file each (its module fixtures, such as the crash runs, made once); the load
# cell runs alone after them, its 100 chains being the load.
RELIABILITY_RESULTS := .gensvc/reliability.jsonl
RELIABILITY_WORKERS ?= 4
RELIABILITY_RUN := GENSVC_RELIABILITY=full GENSVC_RELIABILITY_RESULTS=$(CURDIR)/$(RELIABILITY_RESULTS) $(PY) -m pytest -q
reliability: $(STAMP)
	bash tests/peers/setup_opencravat.sh $(OC_VENV)
	mkdir -p .gensvc && rm -f $(RELIABILITY_RESULTS)
	-$(RELIABILITY_RUN) -n $(RELIABILITY_WORKERS) --dist loadfile --durations=10 tests/reliability --ignore=tests/reliability/test_load.py
	-$(RELIABILITY_RUN) tests/reliability/test_load.py
	$(PY) tests/reliability/report.py $(RELIABILITY_RESULTS) docs/reliability.md

clean:
	rm -rf $(VENV) $(OC_VENV) .gensvc .snakemake results .pytest_cache
