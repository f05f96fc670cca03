# generated from schemas/cgi/submit.yaml; edit that, then run `gensvc dev sync-docs`
"""cgi submit: Submit a Cancer Genome Interpreter job once (a rerun finds the same job) and write
its receipt.

Inputs, outputs and params: meta.yaml beside this file, or `gensvc cgi submit --help`.
"""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
