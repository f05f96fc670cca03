# generated from schemas/cavatica/poll.yaml; edit that, then run `gensvc dev sync-docs`
"""cavatica poll: Wait for a CAVATICA task to be COMPLETED; on FAILED exits 4 with the failing
job's name, status and the tail of its log.

Inputs, outputs and params: meta.yaml beside this file, or `gensvc cavatica poll --help`.
"""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
