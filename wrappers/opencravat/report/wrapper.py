"""OpenCRAVAT report: downloads a finished OpenCRAVAT job's reports (one output per report type), making any that do not exist yet."""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
