# generated from schemas/opencravat/annotate.yaml; edit that, then run `gensvc dev sync-docs`
"""opencravat annotate: Live annotation of one variant (params) or of every ALT of a small VCF
(input), without a job.

Inputs, outputs and params: meta.yaml beside this file, or `gensvc opencravat annotate --help`.
"""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
