import os
from pathlib import Path

validate(config, str(Path(workflow.basedir).parent / "schemas" / "config.yaml"))

WRAPPERS = config.get("wrapper_prefix") or (
    Path(workflow.basedir).parent / "wrappers"
).resolve().as_uri() + "/"
os.environ.setdefault("GENSVC_STATE_DIR", config.get("state_dir", ".gensvc"))


def enabled(service):
    return config.get("services", {}).get(service, {}).get("enabled", True)


def service_params(service, *names):
    chosen = config.get("services", {}).get(service, {})
    return {name: chosen[name] for name in names if name in chosen}


def sample_vcf(wildcards):
    return config["samples"][wildcards.sample]


def final_outputs():
    outputs = []
    if enabled("bravo"):
        outputs += expand("results/bravo/{sample}.bravo.tsv", sample=config["samples"])
    return outputs
