// GENSVC_OPENCRAVAT_SUBMIT: Submit an OpenCRAVAT job once (a rerun finds the same job): a receipt.
// Calls `gensvc opencravat submit` (see `gensvc opencravat submit --help`); options from
// task.ext.args (nextflow.config). Talks to the service: credentials from GENSVC_CREDENTIALS, state (journal, rate limiter) in GENSVC_STATE_DIR, both set in nextflow.config.
process GENSVC_OPENCRAVAT_SUBMIT {
    tag "${meta.id}"
    label 'process_single'
    maxForks 1  // one request stream per service, as the Snakemake workflow's opencravat_api resource

    input:
    tuple val(meta), path(vcf)

    output:
    tuple val(meta), path("${prefix}.opencravat.receipt.json"), emit: receipt
    path "${prefix}.opencravat_submit.log", emit: log
    path "versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    gensvc opencravat submit \\
        --input files=${vcf} \\
        --note ${prefix} \\
        --reports tsv \\
        ${args} \\
        --output receipt=${prefix}.opencravat.receipt.json \\
        --log ${prefix}.opencravat_submit.log

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        gensvc: \$(python3 -c 'import gensvc; print(gensvc.__version__)')
    END_VERSIONS
    """
}
