# generated from schemas/bravo/gene.yaml; edit that, then run `gensvc dev sync-docs`
"""bravo gene: Every variant in a gene, by symbol or Ensembl id (GET /gene).

Inputs, outputs and params: meta.yaml beside this file, or `gensvc bravo gene --help`.
"""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
