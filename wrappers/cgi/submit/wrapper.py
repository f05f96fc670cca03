"""CGI submit: submits a Cancer Genome Interpreter job exactly once and writes its receipt; a rerun finds the same job."""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
