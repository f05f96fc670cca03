# generated from schemas/merge/annotations.yaml; edit that, then run `gensvc dev sync-docs`
"""merge annotations: Join OpenCRAVAT, Bravo and CGI results onto the sample VCF per ALT; a
bgzipped, indexed VCF and a TSV.

Inputs, outputs and params: meta.yaml beside this file, or `gensvc merge annotations --help`.
"""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
