import os
import re
import shutil
from pathlib import Path

from snakemake.exceptions import WorkflowError

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
OFF_BY_DEFAULT = {"opencga", "cavatica"}


def enabled(service):
    chosen = config.get("services", {}).get(service, {})
    return chosen.get("enabled", service not in OFF_BY_DEFAULT)


def service_params(service, *names):
    chosen = config.get("services", {}).get(service, {})
    return {name: chosen[name] for name in names if name in chosen}


def sample_vcf(wildcards):
    return config["samples"][wildcards.sample]


def copy_with_provenance(source, target, log_file):
    """A sample's table taken from the run's, with the provenance record beside it (each
    written whole, then renamed into place; the table last, so it means both are there).
    """
    for suffix in (".prov.json", ""):
        partial = f"{target}{suffix}.partial"
        shutil.copyfile(f"{source}{suffix}", partial)
        os.replace(partial, f"{target}{suffix}")
    Path(log_file).write_text(
        f"{target}: the table of {source}, from the run's one Bravo walk\n"
    )


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
    if enabled("cavatica"):
        sources["cavatica"] = f"results/cavatica/{sample}.cavatica.vcf"
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
    "cavatica_upload",
    "cavatica_run",
    "cavatica_poll",
    "cavatica_download",
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


# ---- cluster jobs: resources and environment ------------------------------------------------
# bench/merge.py: 1 M records (580 MB of VCF and source tables) peak at 160 MB RSS; 200 k
# records (115 MB) merge in 20 s on 2 cores. Both grow with the input. The requests stay well above that (about 3x
# the memory, 10x the time) so a site's slower node or file system does not kill the job; a
# retried job (--retries) asks for more each attempt.
def merge_mem_mb(wildcards, input, attempt):
    return (300 + int(input.size_mb)) * attempt


def merge_runtime(wildcards, input, attempt):
    return (10 + int(input.size_mb / 60)) * attempt  # minutes


# the report reads every sample's tables whole (the plots count per sample)
def report_mem_mb(wildcards, input, attempt):
    return (500 + 2 * int(input.size_mb)) * attempt


def report_runtime(wildcards, input, attempt):
    return (10 + int(input.size_mb / 60)) * attempt


# Cluster executors copy Snakemake's whole environment into each job (the SLURM plugin submits
# with `sbatch --export=ALL`, and slurmctld keeps it with the job); the jobs (merge, report)
# call no service. So with a cluster executor, secrets come from the credentials file only.
SECRET_VARIABLES = re.compile(r"GENSVC_[A-Z]+_(TOKEN|PASSWORD|EMAIL)|SB_AUTH_TOKEN")


def secrets_in_environment():
    return sorted(
        name
        for name, value in os.environ.items()
        if value and SECRET_VARIABLES.fullmatch(name)
    )


# the executor is known once the run starts (not while this file is read), before any job is sent
onstart:
    if (
        workflow.is_main_process
        and workflow.non_local_exec
        and secrets_in_environment()
    ):
        raise WorkflowError(
            f"secrets in the environment ({', '.join(secrets_in_environment())}) would be copied into every "
            "cluster job's saved environment; put them in the credentials file GENSVC_CREDENTIALS (mode 0600), "
            "unset them and run again (README: On a cluster)"
        )
