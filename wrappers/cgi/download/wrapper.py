"""CGI download: downloads a finished CGI job's result zip, checks it whole (no absolute or .. paths, no links, size, count and ratio limits) and extracts its tables."""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
