import os
from pathlib import Path

validate(config, str(Path(workflow.basedir).parent / "schemas" / "config.yaml"))

# wrappers from this checkout unless the config names another prefix (a tag, a fork)
WRAPPERS = (
    config.get("wrapper_prefix")
    or (Path(workflow.basedir).parent / "wrappers").resolve().as_uri() + "/"
)
# --use-conda: the wrappers' env files install gensvc from ${GENSVC_CHECKOUT}, this checkout
os.environ.setdefault("GENSVC_CHECKOUT", str(Path(workflow.basedir).parent.resolve()))
# without state_dir the journal stays in .gensvc/ here and the limiter is the user's own,
# shared with every other run on this host
if config.get("state_dir"):
    os.environ.setdefault("GENSVC_STATE_DIR", config["state_dir"])
SAMPLES = sorted(config["samples"])


# optional branches: off unless the config turns them on
OFF_BY_DEFAULT = {"opencga"}


def enabled(service):
    chosen = config.get("services", {}).get(service, {})
    return chosen.get("enabled", service not in OFF_BY_DEFAULT)


def service_params(service, *names):
    chosen = config.get("services", {}).get(service, {})
    return {name: chosen[name] for name in names if name in chosen}


def sample_vcf(wildcards):
    return config["samples"][wildcards.sample]


def merge_sources(wildcards):
    sample = wildcards["sample"] if isinstance(wildcards, dict) else wildcards.sample
    sources = {"vcf": config["samples"][sample]}
    if enabled("bravo"):
        sources["bravo"] = f"results/bravo/{sample}.bravo.tsv"
    if enabled("opencravat"):
        sources["opencravat"] = f"results/opencravat/{sample}.variant.tsv"
        sources["opencravat_status"] = f"results/opencravat/{sample}.status.json"
    if enabled("cgi"):
        sources["cgi"] = f"results/cgi/{sample}.alterations.tsv"
    return sources


def final_outputs():
    # each service's own results are products too: a deleted one is made again,
    # and then only what depends on it follows
    sources = [
        path
        for sample in SAMPLES
        for name, path in merge_sources({"sample": sample}).items()
        if name != "vcf"
    ]
    return (
        expand(
            "results/{sample}.annotated.{ext}",
            sample=SAMPLES,
            ext=["vcf.gz", "vcf.gz.tbi", "tsv"],
        )
        + sources
        + (
            expand("results/opencga/{sample}.check.json", sample=SAMPLES)
            if enabled("opencga")
            else []
        )
        + ["results/report/plots.done"]
    )


# the steps that make files for one sample, in the order they run
SAMPLE_STEPS = [
    "bravo_frequencies",
    "opencravat_submit",
    "opencravat_poll",
    "opencravat_report",
    "cgi_submit",
    "cgi_poll",
    "cgi_download",
    "merge_annotations",
    "opencga_upload",
    "opencga_index",
    "opencga_poll",
    "opencga_query",
    "opencga_check",
]


def sample_products(sample):
    """Every file the enabled steps make for one sample (the provenance table's rows);
    called once every rule is defined."""
    steps = [getattr(rules, name) for name in SAMPLE_STEPS if rules.has(name)]
    return [path for step in steps for path in expand(list(step.output), sample=sample)]
