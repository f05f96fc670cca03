# generated from schemas/cavatica/apps.yaml; edit that, then run `gensvc dev sync-docs`
"""cavatica apps: List CAVATICA apps (of a project, or public), every page.

Inputs, outputs and params: meta.yaml beside this file, or `gensvc cavatica apps --help`.
"""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
