# generated from schemas/bravo/info.yaml; edit that, then run `gensvc dev sync-docs`
"""bravo info: Dataset name and API version of the Bravo server (GET /).

Inputs, outputs and params: meta.yaml beside this file, or `gensvc bravo info --help`.
"""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
