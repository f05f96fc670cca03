// GENSVC_OPENCRAVAT_REPORT: Download a finished OpenCRAVAT job's variant TSV report.
// Calls `gensvc opencravat report` (see `gensvc opencravat report --help`); options from
// task.ext.args (nextflow.config). Talks to the service: credentials from GENSVC_CREDENTIALS, state (journal, rate limiter) in GENSVC_STATE_DIR, both set in nextflow.config.
process GENSVC_OPENCRAVAT_REPORT {
    tag "${meta.id}"
    label 'process_single'
    maxForks 1  // one request stream per service, as the Snakemake workflow's opencravat_api resource

    input:
    tuple val(meta), path(receipt), path(status)

    output:
    tuple val(meta), path("${prefix}.opencravat.variant.tsv"), emit: tsv
    path "${prefix}.opencravat_report.log", emit: log
    path "versions.yml", emit: versions

    script:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    gensvc opencravat report \\
        --input receipt=${receipt} \\
        --input status=${status} \\
        --output tsv=${prefix}.opencravat.variant.tsv \\
        --log ${prefix}.opencravat_report.log

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        gensvc: \$(python3 -c 'import gensvc; print(gensvc.__version__)')
    END_VERSIONS
    """
}
