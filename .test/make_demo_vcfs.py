"""Writes .test/data/*.vcf: small realistic VCFs for the demo and the workflow tests.

Variants are drawn from the Bravo emulator's deterministic data (so most are
known there) in genes on chr1, chr17, chr22 and X, plus novel ones: an MNP,
private indels, a multiallelic record mixing known and novel ALTs, and a record
written with a longer shared suffix than Bravo's own spelling. Run it again to
regenerate the same files: python .test/make_demo_vcfs.py
"""

import random
from pathlib import Path

from gensvc.emulators.bravo_data import reference_bases, variants_in

HERE = Path(__file__).resolve().parent
HEADER = """##fileformat=VCFv4.2
##source=gensvc demo
##reference=GRCh38
{contigs}##INFO=<ID=DP,Number=1,Type=Integer,Description="Total depth">
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t{sample}
"""
LENGTHS = {"1": 248956422, "17": 83257441, "22": 50818468, "X": 156040895}
WINDOWS = [("17", 7_668_000, 7_690_000), ("22", 16_387_600, 16_391_000), ("22", 19_941_740, 19_969_975),
           ("1", 11_785_723, 11_806_455), ("X", 154_835_788, 154_900_000)]


def records_for(seed: int, count: int):
    rng = random.Random(seed)
    sites = {}
    for chrom, start, end in WINDOWS:
        for v in variants_in(chrom, start, end):
            sites.setdefault((chrom, v["pos"], v["ref"]), []).append(v["alt"])
    chosen = rng.sample(sorted(sites), count - 8)
    records = [(c, p, r, sites[(c, p, r)]) for c, p, r in chosen]
    multi = next(k for k in sorted(sites) if len(sites[k]) > 1 and len(k[2]) == 1)
    novel = next(b for b in "ACGT" if b != multi[2] and b not in sites[multi])
    records = [r for r in records if r[:3] != multi]
    records.append((*multi, sites[multi] + [novel]))  # known ALTs plus a novel one
    for chrom, pos in (("17", 7_675_088), ("22", 16_390_200)):
        ref = reference_bases(chrom, pos, 2)
        mnp = "".join("ACGT"[("ACGT".index(b) + 1) % 4] for b in ref)
        records.append((chrom, pos, ref, [mnp]))  # MNP, novel
    ref = reference_bases("1", 11_790_001, 1)
    records.append(("1", 11_790_001, ref, [ref + "GATTACA"]))  # novel insertion
    ref = reference_bases("X", 154_850_001, 6)
    records.append(("X", 154_850_001, ref, [ref[0]]))  # novel deletion
    known_del = next(v for v in variants_in("17", 7_668_000, 7_690_000) if len(v["ref"]) > len(v["alt"]))
    extra = reference_bases("17", known_del["pos"] + len(known_del["ref"]), 1)
    records.append(("17", known_del["pos"], known_del["ref"] + extra, [known_del["alt"] + extra]))  # same deletion, longer spelling
    records.append(("22", 16_389_447, "A", ["G"]))  # the seed's own example
    records.append(("22", 16_390_137, "T", ["A", "C"]))  # seed multiallelic
    by_site = {}
    for c, p, r, a in records:
        by_site[(c, p, r)] = tuple(dict.fromkeys([*by_site.get((c, p, r), ()), *a]))
    return sorted(((*k, a) for k, a in by_site.items()), key=lambda x: (list(LENGTHS).index(x[0]), x[1]))


def write(path: Path, sample: str, records, prefix: str, seed: int):
    rng = random.Random(seed)
    contigs = "".join(f"##contig=<ID={prefix}{c},length={n}>\n" for c, n in LENGTHS.items())
    lines = [HEADER.format(contigs=contigs, sample=sample)]
    for chrom, pos, ref, alts in records:
        depth = rng.randrange(20, 90)
        ad = [depth] + [rng.randrange(3, depth) for _ in alts]
        gt = "0/1" if len(alts) == 1 else "1/2"
        lines.append(f"{prefix}{chrom}\t{pos}\t.\t{ref}\t{','.join(alts)}\t{rng.randrange(30, 99)}\tPASS\tDP={depth}\tGT:AD\t{gt}:{','.join(map(str, ad))}\n")
    path.write_text("".join(lines))


if __name__ == "__main__":
    write(HERE / "data" / "tumour.vcf", "TUMOUR", records_for(1, 200), "chr", 1)
    write(HERE / "data" / "normal.vcf", "NORMAL", records_for(2, 60), "", 2)
