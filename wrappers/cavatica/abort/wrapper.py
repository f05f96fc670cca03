# generated from schemas/cavatica/abort.yaml; edit that, then run `gensvc dev sync-docs`
"""cavatica abort: Abort a CAVATICA task by its receipt; a task that has already ended is left as
it is (success).

Inputs, outputs and params: meta.yaml beside this file, or `gensvc cavatica abort --help`.
"""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
