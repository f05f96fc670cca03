if enabled("bravo"):

    rule bravo_frequencies:
        input:
            vcf=sample_vcf,
        output:
            table="results/bravo/{sample}.bravo.tsv",
        log:
            "logs/bravo/{sample}.frequencies.log",
        localrule: True
        resources:
            bravo_api=1,
        params:
            **service_params("bravo", "density", "page_size"),
        wrapper:
            f"{WRAPPERS}bravo/frequencies"
