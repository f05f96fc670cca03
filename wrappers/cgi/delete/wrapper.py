"""CGI delete: deletes a CGI job, freeing a slot of the account's quota; a job already gone is success."""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
