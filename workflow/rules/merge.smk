rule merge_annotations:
    input:
        unpack(merge_sources),
    output:
        vcf="results/{sample}.annotated.vcf.gz",
        tbi="results/{sample}.annotated.vcf.gz.tbi",
        tsv=report(
            "results/{sample}.annotated.tsv",
            caption="../report/annotated.rst",
            category="Annotated variants",
            labels={"sample": "{sample}"},
        ),
    log:
        "logs/merge/{sample}.log",
    threads: 2
    resources:
        mem_mb=merge_mem_mb,
        runtime=merge_runtime,
    wrapper:
        f"{WRAPPERS}merge/annotations"
