# generated from schemas/opencga/poll.yaml; edit that, then run `gensvc dev sync-docs`
"""opencga poll: Wait for an OpenCGA job (jobs/{id}/info) to leave PENDING, QUEUED and RUNNING;
DONE exits 0, ERROR or ABORTED exit 4 with the job's own error and the tail of its log.

Inputs, outputs and params: meta.yaml beside this file, or `gensvc opencga poll --help`.
"""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
