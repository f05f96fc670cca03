# generated from schemas/bravo/region.yaml; edit that, then run `gensvc dev sync-docs`
"""bravo region: Every variant in chrom:start-end (GET /region); spans over 250 kb are split into
windows and joined.

Inputs, outputs and params: meta.yaml beside this file, or `gensvc bravo region --help`.
"""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
