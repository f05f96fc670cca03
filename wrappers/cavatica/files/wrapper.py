# generated from schemas/cavatica/files.yaml; edit that, then run `gensvc dev sync-docs`
"""cavatica files: Query the files of a CAVATICA project or folder by name, metadata, tag or
origin task, every page.

Inputs, outputs and params: meta.yaml beside this file, or `gensvc cavatica files --help`.
"""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
