// GENSVC_CGI_POLL: Wait for a CGI job to be Done: its status (exit 4 if the job failed).
// Calls `gensvc cgi poll` (see `gensvc cgi poll --help`); options from
// task.ext.args (nextflow.config). Talks to the service: credentials from GENSVC_CREDENTIALS, state (journal, rate limiter) in GENSVC_STATE_DIR, both set in nextflow.config.
process GENSVC_CGI_POLL {
    tag "${meta.id}"
    label 'process_single'
    maxForks 1  // one request stream per service, as the Snakemake workflow's cgi_api resource

    input:
    tuple val(meta), path(receipt)

    output:
    tuple val(meta), path("${prefix}.cgi.status.json"), emit: status
    path "${prefix}.cgi_poll.log", emit: log
    path "versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    gensvc cgi poll \\
        --input receipt=${receipt} \\
        ${args} \\
        --output status=${prefix}.cgi.status.json \\
        --log ${prefix}.cgi_poll.log

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        gensvc: \$(python3 -c 'import gensvc; print(gensvc.__version__)')
    END_VERSIONS
    """
}
