rule report_plots:
    input:
        bravo=(
            expand("results/bravo/{sample}.bravo.tsv", sample=SAMPLES)
            if enabled("bravo")
            else []
        ),
        opencravat=(
            expand("results/opencravat/{sample}.variant.tsv", sample=SAMPLES)
            if enabled("opencravat")
            else []
        ),
        cgi=(
            expand("results/cgi/{sample}.alterations.tsv", sample=SAMPLES)
            if enabled("cgi")
            else []
        ),
        annotated=expand("results/{sample}.annotated.tsv", sample=SAMPLES),
    output:
        bravo=report(
            "results/report/bravo_af_by_filter.svg",
            caption="../report/bravo.rst",
            category="Plots",
        ),
        opencravat=report(
            "results/report/opencravat_consequences.svg",
            caption="../report/opencravat.rst",
            category="Plots",
        ),
        cgi=report(
            "results/report/cgi_oncogenic_summary.svg",
            caption="../report/cgi.rst",
            category="Plots",
        ),
        provenance=report(
            "results/report/provenance.html",
            caption="../report/provenance.rst",
            category="Provenance",
        ),
        done=touch("results/report/plots.done"),
    log:
        "logs/report/plots.log",
    conda:
        "../../envs/report.yaml"
    resources:
        mem_mb=report_mem_mb,
        runtime=report_runtime,
    params:
        samples=SAMPLES,
        products={sample: sample_products(sample) for sample in SAMPLES},
    script:
        "../scripts/plots.py"
