"""Bravo info: dataset name and API version of the Bravo server."""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
