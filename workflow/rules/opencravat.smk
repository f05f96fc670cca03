if enabled("opencravat"):

    rule opencravat_submit:
        input:
            files=sample_vcf,
        output:
            receipt="results/opencravat/{sample}.receipt.json",
        log:
            "logs/opencravat/{sample}.submit.log",
        localrule: True
        resources:
            opencravat_api=1,
        params:
            **service_params("opencravat", "annotators", "assembly", "note"),
            reports=["tsv"],
        wrapper:
            f"{WRAPPERS}opencravat/submit"

    rule opencravat_poll:
        input:
            receipt="results/opencravat/{sample}.receipt.json",
        output:
            status="results/opencravat/{sample}.status.json",
        log:
            "logs/opencravat/{sample}.poll.log",
        localrule: True
        resources:
            opencravat_api=1,
        params:
            **service_params(
                "opencravat", "timeout", "stuck_after", "first_wait", "max_wait"
            ),
        wrapper:
            f"{WRAPPERS}opencravat/poll"

    rule opencravat_report:
        input:
            receipt="results/opencravat/{sample}.receipt.json",
            status="results/opencravat/{sample}.status.json",
        output:
            tsv="results/opencravat/{sample}.variant.tsv",
        log:
            "logs/opencravat/{sample}.report.log",
        localrule: True
        resources:
            opencravat_api=1,
        wrapper:
            f"{WRAPPERS}opencravat/report"
