#!/usr/bin/env nextflow
// gensvc's reference workflow in Nextflow: each sample VCF through Bravo, OpenCRAVAT
// (submit -> poll -> report) and CGI (submit -> poll -> download), then merged into
// <sample>.annotated.vcf.gz (+ .tbi, .tsv). Every step is `gensvc <service> <operation>`.
//   nextflow run examples/nextflow/main.nf --samples 'data/*.vcf.gz' --outdir results
nextflow.enable.dsl = 2

include { GENSVC_BRAVO_FREQUENCIES   } from './modules/gensvc/bravo/frequencies/main'
include { GENSVC_OPENCRAVAT_SUBMIT   } from './modules/gensvc/opencravat/submit/main'
include { GENSVC_OPENCRAVAT_POLL     } from './modules/gensvc/opencravat/poll/main'
include { GENSVC_OPENCRAVAT_REPORT   } from './modules/gensvc/opencravat/report/main'
include { GENSVC_CGI_SUBMIT          } from './modules/gensvc/cgi/submit/main'
include { GENSVC_CGI_POLL            } from './modules/gensvc/cgi/poll/main'
include { GENSVC_CGI_DOWNLOAD        } from './modules/gensvc/cgi/download/main'
include { GENSVC_MERGE_ANNOTATIONS   } from './modules/gensvc/merge/annotations/main'

workflow {
    samples = Channel
        .fromPath(params.samples, checkIfExists: true)
        .map { vcf -> [[id: vcf.name.replaceAll(/\.vcf(\.b?gz)?$/, '')], vcf] }

    GENSVC_BRAVO_FREQUENCIES(samples)

    // a job service: submit, poll until the job is done, then fetch its results
    GENSVC_OPENCRAVAT_SUBMIT(samples)
    GENSVC_OPENCRAVAT_POLL(GENSVC_OPENCRAVAT_SUBMIT.out.receipt)
    GENSVC_OPENCRAVAT_REPORT(GENSVC_OPENCRAVAT_SUBMIT.out.receipt.join(GENSVC_OPENCRAVAT_POLL.out.status))

    GENSVC_CGI_SUBMIT(samples)
    GENSVC_CGI_POLL(GENSVC_CGI_SUBMIT.out.receipt)
    GENSVC_CGI_DOWNLOAD(GENSVC_CGI_SUBMIT.out.receipt.join(GENSVC_CGI_POLL.out.status))

    merge_inputs = samples
        .join(GENSVC_BRAVO_FREQUENCIES.out.table)
        .join(GENSVC_OPENCRAVAT_REPORT.out.tsv)
        .join(GENSVC_OPENCRAVAT_POLL.out.status)
        .join(GENSVC_CGI_DOWNLOAD.out.alterations)
    GENSVC_MERGE_ANNOTATIONS(merge_inputs)

    GENSVC_BRAVO_FREQUENCIES.out.versions
        .mix(GENSVC_OPENCRAVAT_SUBMIT.out.versions, GENSVC_CGI_SUBMIT.out.versions,
             GENSVC_MERGE_ANNOTATIONS.out.versions)
        .unique()
        .collectFile(name: 'versions.yml', storeDir: "${params.outdir}/pipeline_info")
}
