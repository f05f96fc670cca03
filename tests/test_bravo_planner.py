"""The frequencies planner and allele matching of the Bravo client, in process (no server)."""

import pytest

from gensvc.alleles import minimal
from gensvc.services.bravo import plan_queries, query_positions

# ALTs whose trimmed spelling starts after POS (issue 8, item 9) and where Bravo has them
TRIMMED_LATER = [
    (("22", 16390924, "AT", "AC"), ("22", 16390925)),
    (("chr1", 55051039, "CGACTTACCA", "CG"), ("1", 55051040)),
    (("chr17", 7681923, "CA", "CG"), ("17", 7681924)),
    (("chr17", 7681923, "CA", "GA"), ("17", 7681923)),
    (("22", 100, "at", "ac"), ("22", 101)),
]


def covered(spans, pos):
    return any(start <= pos <= end for start, end in spans)


@pytest.mark.parametrize(("site", "bravo_site"), TRIMMED_LATER)
def test_a_lone_record_is_planned_where_its_alts_can_match(site, bravo_site):
    chrom, pos = bravo_site
    spans = plan_queries(query_positions([site])[chrom], density=0.1)
    assert covered(spans, pos) and covered(spans, site[1])
    assert len(spans) == 1  # still one request for one record


def test_the_last_record_of_a_stretch_is_planned_where_its_alt_starts():
    stretch = [("22", pos, "A", "G") for pos in range(30_000_000, 30_020_000, 70)]
    sites = [*stretch, ("22", 30_020_050, "CT", "CA")]
    spans = plan_queries(query_positions(sites)["22"], density=0.1)
    assert covered(spans, 30_020_051)
    assert all(covered(spans, pos) for _, pos, _, _ in stretch)


def test_every_alt_of_a_multiallelic_record_is_planned():
    positions = query_positions([("chr17", 7681923, "CA", alt) for alt in ("GG", "GA", "CG")])
    assert positions == {"17": [7681923, 7681924]}


def test_symbolic_alts_and_unknown_chromosomes_are_not_planned():
    assert query_positions([("22", 10, "A", "<DEL>"), ("22", 11, "A", "*"), ("chrUn_x", 5, "A", "T")]) == {}


@pytest.mark.parametrize(
    ("spelling", "key"),
    [
        ((16390924, "AT", "AC"), (16390925, "T", "C")),
        ((55051039, "CGACTTACCA", "CG"), (55051040, "GACTTACCA", "G")),
        ((100, "t", "c"), (100, "T", "C")),
        ((100, "aT", "Ac"), (101, "T", "C")),
        ((100, "A", "aagc"), (100, "A", "AAGC")),
    ],
)
def test_equivalent_spellings_share_one_key_whatever_their_case(spelling, key):
    assert minimal(*spelling) == key
