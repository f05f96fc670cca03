"""CGI list: lists the account's CGI jobs with their status and metadata."""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
