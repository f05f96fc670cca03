"""OpenCRAVAT annotate: live OpenCRAVAT annotation of one variant or of every ALT of a small VCF, without a job."""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
