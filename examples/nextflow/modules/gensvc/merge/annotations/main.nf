// GENSVC_MERGE_ANNOTATIONS: Join the services' results onto the sample VCF: a bgzipped, indexed VCF and a TSV (no network).
// Calls `gensvc merge annotations` (see `gensvc merge annotations --help`); options from
// task.ext.args (nextflow.config). Calls no service.
process GENSVC_MERGE_ANNOTATIONS {
    tag "${meta.id}"
    label 'process_low'

    input:
    tuple val(meta), path(vcf), path(bravo), path(opencravat), path(opencravat_status), path(cgi)

    output:
    tuple val(meta), path("${prefix}.annotated.vcf.gz"), path("${prefix}.annotated.vcf.gz.tbi"), emit: vcf
    tuple val(meta), path("${prefix}.annotated.tsv"), emit: tsv
    path "${prefix}.merge_annotations.log", emit: log
    path "versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    gensvc merge annotations \\
        --input vcf=${vcf} \\
        --input bravo=${bravo} \\
        --input opencravat=${opencravat} \\
        --input opencravat_status=${opencravat_status} \\
        --input cgi=${cgi} \\
        ${args} \\
        --output vcf=${prefix}.annotated.vcf.gz \\
        --output tbi=${prefix}.annotated.vcf.gz.tbi \\
        --output tsv=${prefix}.annotated.tsv \\
        --log ${prefix}.merge_annotations.log

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        gensvc: \$(python3 -c 'import gensvc; print(gensvc.__version__)')
    END_VERSIONS
    """
}
