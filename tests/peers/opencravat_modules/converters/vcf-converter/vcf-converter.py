"""Hand-written VCF converter for the gensvc test peer (no pyvcf, no reference data).

Each data line yields one record per ALT allele ('*' and '<...>' symbolic alleles are
dropped). Alleles are trimmed the way OpenCRAVAT's store converter does it: the shared
leading bases first (each one moves POS right by one), then the shared trailing bases;
an emptied allele becomes '-'. The package's MasterCravatConverter then adds 'chr' to
bare chromosome names and re-normalises. With sample columns, one record per sample
carrying a non-reference GT allele (zygosity het/hom).
"""
from cravat import BaseConverter, BadFormatError

SAMPLE_COLS = [
    {"name": "phred", "title": "Phred", "type": "string"},
    {"name": "filter", "title": "VCF filter", "type": "string"},
    {"name": "zygosity", "title": "Zygosity", "type": "string"},
    {"name": "alt_reads", "title": "Alternate reads", "type": "int"},
    {"name": "tot_reads", "title": "Total reads", "type": "int"},
    {"name": "af", "title": "Variant allele frequency", "type": "float"},
    {"name": "hap_block", "title": "Haplotype block ID", "type": "int"},
    {"name": "hap_strand", "title": "Haplotype strand ID", "type": "int"},
]


def trim_alleles(pos, ref, alt):
    if len(ref) == 1 and len(alt) == 1:
        return pos, ref, alt
    start = 0
    while start < min(len(ref), len(alt)) and ref[start] == alt[start]:
        start += 1
    ref, alt, pos = ref[start:], alt[start:], pos + start
    end = 0
    while end < min(len(ref), len(alt)) and ref[-1 - end] == alt[-1 - end]:
        end += 1
    if end:
        ref, alt = ref[: len(ref) - end], alt[: len(alt) - end]
    return pos, ref or "-", alt or "-"


class CravatConverter(BaseConverter):
    def __init__(self):
        self.format_name = "vcf"
        self.addl_cols = [dict(c) for c in SAMPLE_COLS]
        self.sample_names = []

    def check_format(self, f):
        name = getattr(f, "name", "")
        if name.endswith(".vcf") or name.endswith(".vcf.gz"):
            return True
        return f.readline().startswith("##fileformat=VCF")

    def setup(self, f):
        self.sample_names = []

    def convert_line(self, line):
        if line.startswith("#CHROM"):
            self.sample_names = line.rstrip("\r\n").split("\t")[9:]
            return self.IGNORE
        if line.startswith("#") or not line.strip():
            return self.IGNORE
        toks = line.rstrip("\r\n").split("\t")
        if len(toks) < 5:
            raise BadFormatError("VCF line with fewer than 5 columns")
        chrom, pos, vid, ref, alts = toks[:5]
        qual = toks[5] if len(toks) > 5 and toks[5] != "." else None
        filt = toks[6] if len(toks) > 6 and toks[6] != "." else None
        try:
            pos = int(pos)
        except ValueError:
            raise BadFormatError("POS is not an integer")
        tags = None if vid in (".", "") else vid
        per_alt = {}
        for index, alt in enumerate(alts.split(","), start=1):
            if alt == "*" or alt.startswith("<") or alt == ".":
                continue
            npos, nref, nalt = trim_alleles(pos, ref.upper(), alt.upper())
            per_alt[index] = {
                "chrom": chrom, "pos": npos, "ref_base": nref, "alt_base": nalt,
                "tags": tags, "phred": qual, "filter": filt,
            }
        if not per_alt:
            raise BadFormatError("No usable ALT allele")
        if len(toks) < 10 or not self.sample_names:
            return [per_alt[i] for i in sorted(per_alt)]
        fmt = toks[8].split(":")
        records = []
        for sample, data in zip(self.sample_names, toks[9:]):
            values = dict(zip(fmt, data.split(":")))
            gt = values.get("GT", "1").replace("|", "/").split("/")
            called = [g for g in dict.fromkeys(gt) if g not in ("0", ".")]
            for g in called:
                if int(g) not in per_alt:
                    continue
                rec = dict(per_alt[int(g)])
                rec["sample_id"] = sample
                rec["zygosity"] = "hom" if len(set(gt)) == 1 else "het"
                records.append(rec)
        if not records:
            raise BadFormatError("All samples have the reference genotype.")
        return records
