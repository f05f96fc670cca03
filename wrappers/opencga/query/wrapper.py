# generated from schemas/opencga/query.yaml; edit that, then run `gensvc dev sync-docs`
"""opencga query: Query a study's indexed variants (analysis/variant/query) by region, gene,
type, sample and annotation filters, every page (skip/limit, at most 5000 a page) to the end, the
count checked against the server's numMatches; written as it comes, as TSV, JSON lines or VCF.

Inputs, outputs and params: meta.yaml beside this file, or `gensvc opencga query --help`.
"""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
