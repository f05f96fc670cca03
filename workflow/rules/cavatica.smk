# optional (services.cavatica.enabled, off by default): each sample VCF uploaded to a CAVATICA
# project, the configured app run on it, its output VCF downloaded; the merge carries that
# VCF's CAV_* INFO fields, with the task id and app revision in its provenance
if enabled("cavatica"):

    rule cavatica_upload:
        input:
            files=sample_vcf,
        output:
            manifest="results/cavatica/{sample}.manifest.json",
        log:
            "logs/cavatica/{sample}.upload.log",
        localrule: True
        resources:
            cavatica_api=1,
        params:
            **service_params("cavatica", "project", "overwrite"),
        wrapper:
            f"{WRAPPERS}cavatica/upload"

    rule cavatica_run:
        input:
            manifest="results/cavatica/{sample}.manifest.json",
        output:
            receipt="results/cavatica/{sample}.receipt.json",
        log:
            "logs/cavatica/{sample}.run.log",
        localrule: True
        resources:
            cavatica_api=1,
        params:
            **service_params("cavatica", "project", "app", "revision"),
            # the sample VCF (the manifest's one file) as the app's VCF input, then any others
            inputs={
                config["services"]["cavatica"].get("vcf_input", "input_vcf"): {
                    "manifest": True
                },
                **config["services"]["cavatica"].get("inputs", {}),
            },
            name=lambda wildcards: f"gensvc {wildcards.sample}",
        wrapper:
            f"{WRAPPERS}cavatica/run"

    rule cavatica_poll:
        input:
            receipt="results/cavatica/{sample}.receipt.json",
        output:
            status="results/cavatica/{sample}.status.json",
        log:
            "logs/cavatica/{sample}.poll.log",
        localrule: True
        resources:
            cavatica_api=1,
        params:
            **service_params("cavatica", "timeout", "first_wait", "max_wait"),
        wrapper:
            f"{WRAPPERS}cavatica/poll"

    rule cavatica_download:
        input:
            receipt="results/cavatica/{sample}.receipt.json",
            status="results/cavatica/{sample}.status.json",
        output:
            file="results/cavatica/{sample}.cavatica.vcf",
        log:
            "logs/cavatica/{sample}.download.log",
        localrule: True
        resources:
            cavatica_api=1,
        params:
            **service_params("cavatica", "output_id"),
        wrapper:
            f"{WRAPPERS}cavatica/download"
