"""The OpenCGA branch's check: the variants queried back from OpenCGA are as many as the
annotated VCF's ALT alleles (OpenCGA stores one variant per ALT; it skips `*` and symbolic
ones, as this count does). Writes the counts, the job id and the OpenCGA version; fails on
a difference."""

import gzip
import json
import sys
from pathlib import Path


def vcf_alts(path):
    count = 0
    with gzip.open(path, "rt") as handle:
        for line in handle:
            if line.startswith("#") or not line.strip():
                continue
            alts = line.split("\t", 5)[4].split(",")
            count += sum(1 for alt in alts if alt not in ("*", ".") and not alt.startswith("<"))
    return count


def data_rows(path):
    with open(path) as handle:
        return sum(1 for line in handle if line.strip()) - 1  # the header


def main(inputs, output, log_path):
    receipt = json.loads(Path(inputs.receipt).read_text())
    status = json.loads(Path(inputs.status).read_text())
    provenance = json.loads(Path(f"{inputs.receipt}.prov.json").read_text())
    result = {
        "vcf": str(inputs.vcf),
        "vcf_alts": vcf_alts(inputs.vcf),
        "opencga_variants": data_rows(inputs.variants),
        "job_id": receipt["job_id"],
        "job_status": status["status"],
        "opencga_version": provenance.get("versions", {}).get("opencga"),
        "study": receipt["request"].get("study"),
    }
    result["equal"] = result["vcf_alts"] == result["opencga_variants"]
    text = json.dumps(result, indent=2, sort_keys=True) + "\n"
    Path(log_path).write_text(text)
    if not result["equal"]:
        print(f"opencga check: {result['opencga_variants']} variants in OpenCGA, {result['vcf_alts']} ALTs in "
              f"{inputs.vcf} (job {result['job_id']}); see {log_path}", file=sys.stderr)
        sys.exit(1)
    partial = Path(f"{output.check}.partial")
    partial.write_text(text)
    partial.replace(output.check)


main(snakemake.input, snakemake.output, snakemake.log[0])  # noqa: F821
