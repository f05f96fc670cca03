// GENSVC_CGI_DOWNLOAD: Download a finished CGI job's result and extract its tables.
// Calls `gensvc cgi download` (see `gensvc cgi download --help`); options from
// task.ext.args (nextflow.config). Talks to the service: credentials from GENSVC_CREDENTIALS, state (journal, rate limiter) in GENSVC_STATE_DIR, both set in nextflow.config.
process GENSVC_CGI_DOWNLOAD {
    tag "${meta.id}"
    label 'process_single'
    maxForks 1  // one request stream per service, as the Snakemake workflow's cgi_api resource

    input:
    tuple val(meta), path(receipt), path(status)

    output:
    tuple val(meta), path("${prefix}.cgi.alterations.tsv"), emit: alterations
    tuple val(meta), path("${prefix}.cgi.biomarkers.tsv"), emit: biomarkers
    tuple val(meta), path("${prefix}.cgi.summary.txt"), emit: summary
    path "${prefix}.cgi_download.log", emit: log
    path "versions.yml", emit: versions

    script:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    gensvc cgi download \\
        --input receipt=${receipt} \\
        --input status=${status} \\
        --output alterations=${prefix}.cgi.alterations.tsv \\
        --output biomarkers=${prefix}.cgi.biomarkers.tsv \\
        --output summary=${prefix}.cgi.summary.txt \\
        --log ${prefix}.cgi_download.log

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        gensvc: \$(python3 -c 'import gensvc; print(gensvc.__version__)')
    END_VERSIONS
    """
}
