// GENSVC_BRAVO_FREQUENCIES: TOPMed allele frequencies (Bravo) for every ALT of a VCF.
// Calls `gensvc bravo frequencies` (see `gensvc bravo frequencies --help`); options from
// task.ext.args (nextflow.config). Talks to the service: credentials from GENSVC_CREDENTIALS, state (journal, rate limiter) in GENSVC_STATE_DIR, both set in nextflow.config.
process GENSVC_BRAVO_FREQUENCIES {
    tag "${meta.id}"
    label 'process_single'
    maxForks 1  // one request stream per service, as the Snakemake workflow's bravo_api resource

    input:
    tuple val(meta), path(vcf)

    output:
    tuple val(meta), path("${prefix}.bravo.tsv"), emit: table
    path "${prefix}.bravo_frequencies.log", emit: log
    path "versions.yml", emit: versions

    script:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    gensvc bravo frequencies \\
        --input vcf=${vcf} \\
        --output table=${prefix}.bravo.tsv \\
        --log ${prefix}.bravo_frequencies.log

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        gensvc: \$(python3 -c 'import gensvc; print(gensvc.__version__)')
    END_VERSIONS
    """
}
