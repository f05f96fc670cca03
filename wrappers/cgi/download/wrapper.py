# generated from schemas/cgi/download.yaml; edit that, then run `gensvc dev sync-docs`
"""cgi download: Download a finished CGI job's result zip, check it whole, and extract its tables
safely.

Inputs, outputs and params: meta.yaml beside this file, or `gensvc cgi download --help`.
"""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
