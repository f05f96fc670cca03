"""OpenCRAVAT poll: waits for an OpenCRAVAT job with backoff; exits 4 with the job's log tail when it fails or cannot start."""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
