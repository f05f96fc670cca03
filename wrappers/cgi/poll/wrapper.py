"""CGI poll: waits for a CGI job; exits 4 with the tail of its logs when it ends in Error."""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
