# generated from schemas/bravo/variant.yaml; edit that, then run `gensvc dev sync-docs`
"""bravo variant: One variant by id (CHROM-POS-REF-ALT), or every variant at chrom + pos (GET
/variant).

Inputs, outputs and params: meta.yaml beside this file, or `gensvc bravo variant --help`.
"""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
