# generated from schemas/opencravat/submit.yaml; edit that, then run `gensvc dev sync-docs`
"""opencravat submit: Submit an OpenCRAVAT annotation job once (a rerun finds the same job) and
write its receipt.

Inputs, outputs and params: meta.yaml beside this file, or `gensvc opencravat submit --help`.
"""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
