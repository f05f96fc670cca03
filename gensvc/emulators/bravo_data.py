"""Deterministic variant data behind the Bravo (TOPMed freeze5) emulator.

The emulator serves two kinds of records:

* the records printed in Bravo's own API help page (the seed), copied field for field,
  so that the help page's example queries answer exactly as documented;
* synthetic records at TOPMed-like density (about one variant site per 10 bp) on
  chromosomes 1, 2, 17, 22 and X. They are generated lazily per 10 kb block from a
  random generator seeded by (chromosome, block), so every run and every process sees
  the same data without holding a genome in memory.

Inside the seed window chr22:16387000-16391000 synthetic records are PASS only and never
share a position with a seed record, so the only non-PASS records there are the seed's.

Ground truth for tests: `variants_in(chrom, start, end)` (JSON-shaped records in stored
order) and `GENES` / `find_gene(name)`.
"""

from __future__ import annotations

import bisect
import math
import random
from functools import lru_cache
from typing import NamedTuple

ALLELE_NUMBER = 125568  # freeze5: 62,784 samples x 2; every record in the seed shows it

BLOCK_SIZE = 10_000
MEAN_SITE_GAP = 10  # base pairs between variant sites, on average

CHROMOSOMES = [str(n) for n in range(1, 23)] + ["X", "Y", "M"]
CHROMOSOME_NUMBER = {name: index + 1 for index, name in enumerate(CHROMOSOMES)}

# hg38 lengths of the chromosomes that carry synthetic data; the others are valid but empty.
SYNTHETIC_CHROMOSOME_LENGTHS = {
    "1": 248_956_422,
    "2": 242_193_529,
    "17": 83_257_441,
    "22": 50_818_468,
    "X": 156_040_895,
}

# Approximate hg38 centromeres; records there may carry the CEN filter as in TOPMed.
CENTROMERES = {
    "1": (121_700_000, 125_100_000),
    "2": (91_800_000, 96_000_000),
    "17": (22_700_000, 27_400_000),
    "22": (12_900_000, 15_100_000),
    "X": (58_100_000, 61_000_000),
}

SEED_WINDOW = ("22", 16_387_000, 16_391_000)

# Fixed leading bytes of every object id; the rest encodes chromosome, position and allele.
OBJECT_ID_PREFIX = "59a8c9b3"

FAILED_FILTERS = ["SVM", "SVM;DISC", "DISC", "EXHET", "SVM;EXHET", "SVM;DISC;EXHET"]
FAILED_FILTER_WEIGHTS = [40, 15, 8, 8, 5, 6]
CHRX_FAILED_FILTERS = ["CHRXHET", "SVM;CHRXHET"]


class Gene(NamedTuple):
    name: str
    id: str
    chrom: str
    start: int
    stop: int
    strand: str
    other_names: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return _fields(self, ("name", "id", "chrom", "start", "stop", "strand"))


# hg38 (Ensembl) coordinates. ABCD1P4 is the seed's; NF1 is longer than 250 kb, so
# gene queries reach beyond the region limit.
GENES = [
    Gene("ABCD1P4", "ENSG00000225293", "22", 16_387_695, 16_390_888, "+"),
    Gene("COMT", "ENSG00000093010", "22", 19_941_740, 19_969_975, "+"),
    Gene("APOL1", "ENSG00000100342", "22", 36_253_070, 36_267_530, "+"),
    Gene("TP53", "ENSG00000141510", "17", 7_661_779, 7_687_538, "-", ("LFS1",)),
    Gene("NF1", "ENSG00000196712", "17", 31_094_927, 31_382_116, "+"),
    Gene("BRCA1", "ENSG00000012048", "17", 43_044_295, 43_125_483, "-", ("RNF53",)),
    Gene("MTHFR", "ENSG00000177000", "1", 11_785_723, 11_806_455, "-"),
    Gene("PCSK9", "ENSG00000169174", "1", 55_039_548, 55_064_852, "+", ("NARC1",)),
    Gene("APOB", "ENSG00000084674", "2", 21_001_429, 21_044_073, "-"),
    Gene("F8", "ENSG00000185010", "X", 154_835_788, 155_026_940, "-"),
]


def find_gene(name: str) -> Gene | None:
    """The gene whose id, symbol or other name equals `name` exactly, like Bravo's lookup."""
    for gene in GENES:
        if name == gene.id or name == gene.name or name in gene.other_names:
            return gene
    return None


class VariantRow(NamedTuple):
    """One stored record: one ALT allele at one site, as Bravo keeps them."""

    xpos: int
    allele_index: int
    object_id: str
    chrom: str
    pos: int
    ref: str
    alt: str
    allele_count: int
    allele_num: int
    allele_freq: float
    site_quality: float
    filter: str
    variant_id: str

    def to_json(self) -> dict:  # keys sorted, as the server sends them
        return _fields(self, ("allele_count", "allele_freq", "allele_num", "alt", "chrom", "filter", "pos",
                              "ref", "site_quality", "variant_id"))


def _fields(record, names: tuple[str, ...]) -> dict:
    """The record's wire form: these of its fields, in this order."""
    return {name: getattr(record, name) for name in names}


def normalise_chrom(chrom: str) -> str | None:
    """Bravo's chromosome check: optional `chr` prefix, then 1-22, X, Y or M (case matters)."""
    if chrom.startswith("chr"):
        chrom = chrom[3:]
    return chrom if chrom in CHROMOSOME_NUMBER else None


def xpos_of(chrom: str, pos: int) -> int:
    return CHROMOSOME_NUMBER[chrom] * 1_000_000_000 + pos


def allele_freq_of(allele_count: int, allele_num: int = ALLELE_NUMBER) -> float:
    # Six significant digits, as the seed shows (7.96381e-06, 0.0498614).
    return float(f"{allele_count / allele_num:.6g}")


def object_id_of(chrom: str, pos: int, allele_index: int) -> str:
    # 24 hex digits that grow with (xpos, allele index), so ties resolve in position order.
    return f"{OBJECT_ID_PREFIX}{CHROMOSOME_NUMBER[chrom]:02x}{pos:08x}{allele_index:06x}"


def make_row(chrom: str, pos: int, allele_index: int, ref: str, alt: str,
             allele_count: int, site_quality: float, filter_: str) -> VariantRow:
    return VariantRow(
        xpos=xpos_of(chrom, pos),
        allele_index=allele_index,
        object_id=object_id_of(chrom, pos, allele_index),
        chrom=chrom,
        pos=pos,
        ref=ref,
        alt=alt,
        allele_count=allele_count,
        allele_num=ALLELE_NUMBER,
        allele_freq=allele_freq_of(allele_count),
        site_quality=float(site_quality),
        filter=filter_,
        variant_id=f"{chrom}-{pos}-{ref}-{alt}",
    )


# (pos, ref, alt, allele_count, site_quality, filter) of every chr22 record in the seed;
# records at one position are listed in their allele order.
SEED_RECORDS = [
    (16387678, "C", "G", 2, 255.0, "PASS"),
    (16387678, "C", "T", 1, 157.0, "PASS"),
    (16387844, "G", "C", 1, 50.0, "SVM"),
    (16388018, "C", "T", 1, 44.0, "SVM"),
    (16388182, "C", "A", 1, 32.0, "SVM"),
    (16388371, "T", "C", 1, 255.0, "SVM"),
    (16388398, "G", "T", 1, 255.0, "SVM"),
    (16389436, "G", "C", 150, 27.0, "SVM;DISC"),
    (16389447, "A", "G", 6261, 255.0, "PASS"),
    (16390137, "T", "A", 2, 255.0, "PASS"),
    (16390137, "T", "C", 1, 255.0, "PASS"),
    (16390735, "A", "AAGCAGCGGCTGG", 21, 147.0, "SVM"),
    (16390780, "C", "A", 11, 255.0, "SVM"),
    (16390901, "A", "C", 2610, 117.0, "SVM;DISC;EXHET"),
    (16390907, "T", "C", 3392, 143.0, "SVM;DISC;EXHET"),
]


def _seed_rows() -> list[VariantRow]:
    rows = []
    allele_index: dict[int, int] = {}
    for pos, ref, alt, allele_count, site_quality, filter_ in SEED_RECORDS:
        index = allele_index.get(pos, 0)
        allele_index[pos] = index + 1
        rows.append(make_row("22", pos, index, ref, alt, allele_count, site_quality, filter_))
    return rows


SEED_ROWS = _seed_rows()
SEED_POSITIONS = {row.pos for row in SEED_ROWS}
SEED_REFERENCE_BASES = {row.pos: row.ref[0] for row in SEED_ROWS}


# Maps every byte to one base, so random bytes become a reference sequence in one call.
_BYTE_TO_BASE = bytes(b"ACGT"[value % 4] for value in range(256))


@lru_cache(maxsize=256)
def _reference_block(chrom: str, block: int) -> str:
    rng = random.Random(f"gensvc-bravo-reference:{chrom}:{block}")
    bases = rng.randbytes(BLOCK_SIZE).translate(_BYTE_TO_BASE).decode("ascii")
    if chrom == SEED_WINDOW[0]:
        first = block * BLOCK_SIZE + 1
        patches = [(pos - first, base) for pos, base in SEED_REFERENCE_BASES.items()
                   if first <= pos < first + BLOCK_SIZE]
        if patches:
            letters = list(bases)
            for offset, base in patches:
                letters[offset] = base
            bases = "".join(letters)
    return bases


def reference_bases(chrom: str, pos: int, length: int) -> str:
    """A synthetic reference sequence, consistent with the seed's REF alleles."""
    out = []
    while length > 0:
        block, offset = divmod(pos - 1, BLOCK_SIZE)
        piece = _reference_block(chrom, block)[offset:offset + length]
        out.append(piece)
        pos += len(piece)
        length -= len(piece)
    return "".join(out)


@lru_cache(maxsize=4096)
def _cached_allele_freq(allele_count: int) -> float:
    return allele_freq_of(allele_count)


_OTHER_BASES = {base: [b for b in "ACGT" if b != base] for base in "ACGT"}
_FAILED_FILTER_CUMULATIVE = [sum(FAILED_FILTER_WEIGHTS[:i + 1]) / sum(FAILED_FILTER_WEIGHTS)
                             for i in range(len(FAILED_FILTER_WEIGHTS))]


@lru_cache(maxsize=128)  # ~1.3 Mb of records, ~40 MB
def _block_rows(chrom: str, block: int) -> tuple[VariantRow, ...]:
    """All records whose position falls in one 10 kb block, in stored order."""
    chrom_length = SYNTHETIC_CHROMOSOME_LENGTHS.get(chrom)
    first = block * BLOCK_SIZE + 1
    last = first + BLOCK_SIZE - 1
    rows: list[VariantRow] = []
    if chrom_length is not None and first <= chrom_length:
        last = min(last, chrom_length)
        rows = _synthetic_rows(chrom, block, first, last)
    if chrom == SEED_WINDOW[0]:
        seeds = [row for row in SEED_ROWS if first <= row.pos <= last]
        if seeds:
            rows = sorted(rows + seeds, key=lambda row: (row.xpos, row.allele_index))
    return tuple(rows)


def _synthetic_rows(chrom: str, block: int, first: int, last: int) -> list[VariantRow]:
    # One tight loop with local names: a 250 kb region (~29,000 records) must be quick.
    rng = random.Random(f"gensvc-bravo-variants:{chrom}:{block}")
    uniform = rng.random
    log = math.log
    # this block's bases plus the next block's, for deletions that cross the boundary
    sequence = _reference_block(chrom, block) + _reference_block(chrom, block + 1)
    seed_chrom, seed_start, seed_end = SEED_WINDOW
    has_seeds = chrom == seed_chrom
    chrom_number = CHROMOSOME_NUMBER[chrom]
    centromere_start, centromere_end = CENTROMERES.get(chrom, (0, -1))
    is_x = chrom == "X"
    mean_gap = MEAN_SITE_GAP - 1
    allele_freq = _cached_allele_freq
    rows: list[VariantRow] = []
    append = rows.append
    new_row = tuple.__new__  # skips the NamedTuple constructor's argument handling
    pos = first - 1
    while True:
        pos += 1 + int(-log(1.0 - uniform()) * mean_gap)
        if pos > last:
            return rows
        if has_seeds and pos in SEED_POSITIONS:
            continue
        offset = pos - first
        ref_base = sequence[offset]
        kind = uniform()
        if kind < 0.045:  # deletion, VCF-style with the anchor base
            length = 1 + min(int(-log(1.0 - uniform()) * 2), 14)
            alleles = ((sequence[offset:offset + length + 1], ref_base),)
        elif kind < 0.08:  # insertion
            length = 1 + min(int(-log(1.0 - uniform()) * 2.5), 19)
            alleles = ((ref_base, ref_base + _random_bases(rng, length)),)
        else:  # SNV; sometimes multiallelic, each ALT its own record like the seed's 16390137
            others = _OTHER_BASES[ref_base]
            if kind < 0.91:
                alleles = ((ref_base, others[int(uniform() * 3)]),)
            elif kind < 0.985:
                skipped = int(uniform() * 3)
                alleles = tuple((ref_base, base) for index, base in enumerate(others)
                                if index != skipped)
            else:
                alleles = tuple((ref_base, base) for base in others)
        pass_only = has_seeds and seed_start <= pos <= seed_end
        in_centromere = centromere_start <= pos <= centromere_end
        xpos = chrom_number * 1_000_000_000 + pos
        oid_stem = f"{OBJECT_ID_PREFIX}{chrom_number:02x}{pos:08x}"
        for allele_index, (ref, alt) in enumerate(alleles):
            # Mostly singletons and rare alleles (a power-law tail), a few common variants.
            if uniform() < 0.03:
                allele_count = max(1, round(10 ** (-3.0 + 2.95 * uniform()) * ALLELE_NUMBER))
            else:
                allele_count = min(int((1.0 - uniform()) ** (-1 / 1.1)), ALLELE_NUMBER // 2)
            if allele_index > 0:  # secondary alleles are rarer
                allele_count = max(1, allele_count // 4)
            if allele_count >= 5:
                quality = 255.0 if uniform() < 0.85 else float(60 + int(uniform() * 195))
            else:
                quality = 255.0 if uniform() < 0.3 else float(10 + int(uniform() * 245))
            if pass_only:
                filter_ = "PASS"
            elif in_centromere and uniform() < 0.6:
                filter_ = "CEN"
            elif uniform() >= (0.12 if allele_count == 1 else 0.05):
                filter_ = "PASS"
            elif is_x and uniform() < 0.3:
                filter_ = CHRX_FAILED_FILTERS[int(uniform() * len(CHRX_FAILED_FILTERS))]
            else:
                draw = uniform()
                filter_ = next(name for name, bound in
                               zip(FAILED_FILTERS, _FAILED_FILTER_CUMULATIVE) if draw < bound)
            append(new_row(VariantRow, (
                xpos, allele_index, f"{oid_stem}{allele_index:06x}", chrom, pos, ref, alt,
                allele_count, ALLELE_NUMBER, allele_freq(allele_count), quality,
                filter_, f"{chrom}-{pos}-{ref}-{alt}",
            )))


def _random_bases(rng: random.Random, length: int) -> str:
    return rng.randbytes(length).translate(_BYTE_TO_BASE).decode("ascii")


def rows_in(chrom: str, start: int, end: int) -> list[VariantRow]:
    """Stored records with start <= pos <= end on `chrom` (already normalised), in xpos order."""
    if chrom not in CHROMOSOME_NUMBER or end < start:
        return []
    first_block = max(start - 1, 0) // BLOCK_SIZE
    last_block = max(end - 1, 0) // BLOCK_SIZE
    rows: list[VariantRow] = []
    for block in range(first_block, last_block + 1):
        rows.extend(_block_rows(chrom, block))
    positions = [row.pos for row in rows]
    return rows[bisect.bisect_left(positions, start):bisect.bisect_right(positions, end)]


def rows_at(chrom: str, pos: int) -> list[VariantRow]:
    return rows_in(chrom, pos, pos)


def variants_in(chrom: str, start: int, end: int) -> list[dict]:
    """Ground truth: JSON records in [start, end] (both inclusive), by xpos then allele index."""
    name = normalise_chrom(chrom)
    if name is None:
        raise ValueError(f"invalid chromosome name: {chrom!r}")
    return [row.to_json() for row in rows_in(name, start, end)]
