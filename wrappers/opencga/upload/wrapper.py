# generated from schemas/opencga/upload.yaml; edit that, then run `gensvc dev sync-docs`
"""opencga upload: Upload files into an OpenCGA study (files/upload, streamed from disk); a file
of the same name and size already in the folder is reused, so a rerun uploads nothing twice.

Inputs, outputs and params: meta.yaml beside this file, or `gensvc opencga upload --help`.
"""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
