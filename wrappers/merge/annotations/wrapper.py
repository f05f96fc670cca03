"""Merge annotations: joins OpenCRAVAT, Bravo and CGI results onto the sample VCF per ALT (OC_*, BRAVO_*, CGI_* INFO fields); writes a bgzipped, tabix-indexed VCF and a TSV."""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
