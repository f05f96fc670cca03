# generated from schemas/opencga/index.yaml; edit that, then run `gensvc dev sync-docs`
"""opencga index: Start OpenCGA's variant index job (operation/variant/index) for uploaded files,
once; the job carries the idempotency tag in its tags, so a rerun (even after a crash) finds the
job instead of starting another. Writes a receipt for opencga poll.

Inputs, outputs and params: meta.yaml beside this file, or `gensvc opencga index --help`.
"""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
