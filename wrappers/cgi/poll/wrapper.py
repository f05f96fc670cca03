# generated from schemas/cgi/poll.yaml; edit that, then run `gensvc dev sync-docs`
"""cgi poll: Wait for a CGI job to be Done; on Error exits 4 with the tail of the job's logs.

Inputs, outputs and params: meta.yaml beside this file, or `gensvc cgi poll --help`.
"""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
