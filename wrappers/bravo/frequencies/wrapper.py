# generated from schemas/bravo/frequencies.yaml; edit that, then run `gensvc dev sync-docs`
"""bravo frequencies: TOPMed allele frequencies for every ALT of a VCF, with as few requests as
the data allow.

Inputs, outputs and params: meta.yaml beside this file, or `gensvc bravo frequencies --help`.
"""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
