"""Bravo variant: one variant by id, or every variant at a position, from Bravo (TOPMed freeze5)."""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
