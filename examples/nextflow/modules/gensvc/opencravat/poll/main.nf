// GENSVC_OPENCRAVAT_POLL: Wait for an OpenCRAVAT job to finish: its status (exit 4 if the job failed).
// Calls `gensvc opencravat poll` (see `gensvc opencravat poll --help`); options from
// task.ext.args (nextflow.config). Talks to the service: credentials from GENSVC_CREDENTIALS, state (journal, rate limiter) in GENSVC_STATE_DIR, both set in nextflow.config.
process GENSVC_OPENCRAVAT_POLL {
    tag "${meta.id}"
    label 'process_single'
    maxForks 1  // one request stream per service, as the Snakemake workflow's opencravat_api resource

    input:
    tuple val(meta), path(receipt)

    output:
    tuple val(meta), path("${prefix}.opencravat.status.json"), emit: status
    path "${prefix}.opencravat_poll.log", emit: log
    path "versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    gensvc opencravat poll \\
        --input receipt=${receipt} \\
        ${args} \\
        --output status=${prefix}.opencravat.status.json \\
        --log ${prefix}.opencravat_poll.log

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        gensvc: \$(python3 -c 'import gensvc; print(gensvc.__version__)')
    END_VERSIONS
    """
}
