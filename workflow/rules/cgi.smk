if enabled("cgi"):

    rule cgi_submit:
        input:
            mutations=sample_vcf,
        output:
            receipt="results/cgi/{sample}.receipt.json",
        log:
            "logs/cgi/{sample}.submit.log",
        localrule: True
        resources:
            cgi_api=1,
        params:
            **service_params("cgi", "cancer_type", "reference"),
            title=lambda wildcards: wildcards.sample,
        wrapper:
            f"{WRAPPERS}cgi/submit"

    rule cgi_poll:
        input:
            receipt="results/cgi/{sample}.receipt.json",
        output:
            status="results/cgi/{sample}.status.json",
        log:
            "logs/cgi/{sample}.poll.log",
        localrule: True
        resources:
            cgi_api=1,
        params:
            **service_params("cgi", "timeout", "first_wait", "max_wait"),
        wrapper:
            f"{WRAPPERS}cgi/poll"

    rule cgi_download:
        input:
            receipt="results/cgi/{sample}.receipt.json",
            status="results/cgi/{sample}.status.json",
        output:
            alterations="results/cgi/{sample}.alterations.tsv",
            biomarkers="results/cgi/{sample}.biomarkers.tsv",
            summary="results/cgi/{sample}.summary.txt",
        log:
            "logs/cgi/{sample}.download.log",
        localrule: True
        resources:
            cgi_api=1,
        wrapper:
            f"{WRAPPERS}cgi/download"
