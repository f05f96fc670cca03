# generated from schemas/opencravat/report.yaml; edit that, then run `gensvc dev sync-docs`
"""opencravat report: Download a finished job's reports, one output per report type, making any
report that does not exist yet.

Inputs, outputs and params: meta.yaml beside this file, or `gensvc opencravat report --help`.
"""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
