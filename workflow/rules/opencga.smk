# optional (services.opencga.enabled, off by default): the annotated VCF into an OpenCGA
# study, indexed, queried back, and the count of variants checked against the VCF's ALTs
if enabled("opencga"):

    rule opencga_upload:
        input:
            files="results/{sample}.annotated.vcf.gz",
        output:
            manifest="results/opencga/{sample}.manifest.json",
        log:
            "logs/opencga/{sample}.upload.log",
        localrule: True
        resources:
            opencga_api=1,
        params:
            **service_params("opencga", "study"),
            # a folder per content: an annotated VCF that changed is a new file, not a clash
            folder=lambda wildcards: f"gensvc/{wildcards.sample}/{{sha256}}",
        wrapper:
            f"{WRAPPERS}opencga/upload"

    rule opencga_index:
        input:
            manifest="results/opencga/{sample}.manifest.json",
        output:
            receipt="results/opencga/{sample}.receipt.json",
        log:
            "logs/opencga/{sample}.index.log",
        localrule: True
        resources:
            opencga_api=1,
        params:
            description=lambda wildcards: f"gensvc {wildcards.sample}",
        wrapper:
            f"{WRAPPERS}opencga/index"

    rule opencga_poll:
        input:
            receipt="results/opencga/{sample}.receipt.json",
        output:
            status="results/opencga/{sample}.status.json",
        log:
            "logs/opencga/{sample}.poll.log",
        localrule: True
        resources:
            opencga_api=1,
        params:
            **service_params("opencga", "timeout", "first_wait", "max_wait"),
        wrapper:
            f"{WRAPPERS}opencga/poll"

    rule opencga_query:
        input:
            status="results/opencga/{sample}.status.json",
        output:
            variants="results/opencga/{sample}.variants.tsv",
        log:
            "logs/opencga/{sample}.query.log",
        localrule: True
        resources:
            opencga_api=1,
        params:
            **service_params("opencga", "study"),
        wrapper:
            f"{WRAPPERS}opencga/query"

    rule opencga_check:
        input:
            vcf="results/{sample}.annotated.vcf.gz",
            variants="results/opencga/{sample}.variants.tsv",
            receipt="results/opencga/{sample}.receipt.json",
            status="results/opencga/{sample}.status.json",
        output:
            check="results/opencga/{sample}.check.json",
        log:
            "logs/opencga/{sample}.check.log",
        localrule: True
        conda:
            "../../envs/report.yaml"
        script:
            "../scripts/opencga_check.py"
