# generated from schemas/opencga/search.yaml; edit that, then run `gensvc dev sync-docs`
"""opencga search: Search OpenCGA's catalog (projects, studies, samples, files, individuals,
jobs) by the usual query params, every page to the end; TSV or JSON.

Inputs, outputs and params: meta.yaml beside this file, or `gensvc opencga search --help`.
"""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
