# generated from schemas/cavatica/run.yaml; edit that, then run `gensvc dev sync-docs`
"""cavatica run: Create and run a CAVATICA task once (a rerun finds the same task through the key
in its description) and write its receipt.

Inputs, outputs and params: meta.yaml beside this file, or `gensvc cavatica run --help`.
"""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
