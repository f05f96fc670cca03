# generated from schemas/cgi/delete.yaml; edit that, then run `gensvc dev sync-docs`
"""cgi delete: Delete a CGI job (frees a slot of the account's quota); a job already gone is
success.

Inputs, outputs and params: meta.yaml beside this file, or `gensvc cgi delete --help`.
"""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
