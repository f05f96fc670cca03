"""Bravo frequencies: tOPMed allele frequencies from Bravo for every ALT of a VCF, planned to use as few requests as possible."""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
