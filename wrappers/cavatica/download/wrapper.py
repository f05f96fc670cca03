# generated from schemas/cavatica/download.yaml; edit that, then run `gensvc dev sync-docs`
"""cavatica download: Download an output file of a COMPLETED CAVATICA task in parallel Range
parts (resumable), its size and checksum checked. An output that is a list of files goes into one
named output per element, `<output_id>_<index>` (index from 0, in the task's order), all of them
named.

Inputs, outputs and params: meta.yaml beside this file, or `gensvc cavatica download --help`.
"""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
