# generated from schemas/cavatica/upload.yaml; edit that, then run `gensvc dev sync-docs`
"""cavatica upload: Upload files into a CAVATICA project or folder by parallel multipart upload
(resumable; a file already there is reused) and write a manifest.

Inputs, outputs and params: meta.yaml beside this file, or `gensvc cavatica upload --help`.
"""

from gensvc.runner import run_wrapper

run_wrapper(__file__, globals().get("snakemake"))
