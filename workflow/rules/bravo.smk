if enabled("bravo"):

    rule bravo_frequencies:
        input:
            vcf=sample_vcf,
        output:
            table="results/bravo/{sample}.bravo.tsv",
        params:
            **service_params("bravo", "density", "page_size"),
        log:
            "logs/bravo/{sample}.frequencies.log",
        resources:
            bravo_api=1,
        localrule: True
        conda:
            "../../envs/bravo.yaml"
        wrapper:
            f"{WRAPPERS}bravo/frequencies"
