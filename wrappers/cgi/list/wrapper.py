# generated from schemas/cgi/list.yaml; edit that, then run `gensvc dev sync-docs`
"""cgi list: The account's CGI jobs with their status and metadata, as JSON.

Inputs, outputs and params: meta.yaml beside this file, or `gensvc cgi list --help`.
"""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
