"""Bravo region: every Bravo variant in a region of any size; spans over 250 kb are queried in windows and joined without duplicates."""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
