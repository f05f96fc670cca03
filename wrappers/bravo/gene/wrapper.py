"""Bravo gene: every Bravo variant in a gene, by symbol or Ensembl id."""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
