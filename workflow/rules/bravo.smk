if enabled("bravo"):

    # Bravo is asked once for the sites of every sample of the run (a site the samples share
    # costs one request, not one per sample), writing a table per sample into results/bravo/run/
    rule bravo_frequencies_run:
        input:
            vcf=[config["samples"][sample] for sample in SAMPLES],
        output:
            table=expand("results/bravo/run/{sample}.bravo.tsv", sample=SAMPLES),
        log:
            "logs/bravo/run.frequencies.log",
        localrule: True
        resources:
            bravo_api=1,
        params:
            **service_params("bravo", "density", "page_size"),
        wrapper:
            f"{WRAPPERS}bravo/frequencies"

    # each sample's table, split from the run's: deleting one remakes only it and what it feeds
    rule bravo_frequencies:
        input:
            table="results/bravo/run/{sample}.bravo.tsv",
        output:
            table="results/bravo/{sample}.bravo.tsv",
        log:
            "logs/bravo/{sample}.frequencies.log",
        localrule: True
        run:
            copy_with_provenance(input.table, output.table, log[0])
