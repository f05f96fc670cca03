# generated from schemas/opencravat/poll.yaml; edit that, then run `gensvc dev sync-docs`
"""opencravat poll: Wait for an OpenCRAVAT job to finish; fails (exit 4) with the log tail if it
errors or cannot start.

Inputs, outputs and params: meta.yaml beside this file, or `gensvc opencravat poll --help`.
"""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
