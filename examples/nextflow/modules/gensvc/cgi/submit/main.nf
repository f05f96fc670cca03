// GENSVC_CGI_SUBMIT: Submit a Cancer Genome Interpreter job once (a rerun finds the same job): a receipt.
// Calls `gensvc cgi submit` (see `gensvc cgi submit --help`); options from
// task.ext.args (nextflow.config). Talks to the service: credentials from GENSVC_CREDENTIALS, state (journal, rate limiter) in GENSVC_STATE_DIR, both set in nextflow.config.
process GENSVC_CGI_SUBMIT {
    tag "${meta.id}"
    label 'process_single'
    maxForks 1  // one request stream per service, as the Snakemake workflow's cgi_api resource

    input:
    tuple val(meta), path(vcf)

    output:
    tuple val(meta), path("${prefix}.cgi.receipt.json"), emit: receipt
    path "${prefix}.cgi_submit.log", emit: log
    path "versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    gensvc cgi submit \\
        --input mutations=${vcf} \\
        --title ${prefix} \\
        ${args} \\
        --output receipt=${prefix}.cgi.receipt.json \\
        --log ${prefix}.cgi_submit.log

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        gensvc: \$(python3 -c 'import gensvc; print(gensvc.__version__)')
    END_VERSIONS
    """
}
