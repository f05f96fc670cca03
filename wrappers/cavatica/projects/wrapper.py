# generated from schemas/cavatica/projects.yaml; edit that, then run `gensvc dev sync-docs`
"""cavatica projects: List the CAVATICA projects the token can see, every page.

Inputs, outputs and params: meta.yaml beside this file, or `gensvc cavatica projects --help`.
"""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
