"""gensvc.alleles: the two trims the services' spellings are built on."""

import pytest

from gensvc.alleles import minimal, trimmed


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ((10, "A", "G"), (10, "A", "G")),  # a SNV is already minimal
        ((16390924, "AT", "AC"), (16390925, "T", "C")),  # shared prefix: POS moves right
        ((10, "CAT", "CGT"), (11, "A", "G")),  # shared suffix and prefix
        ((55051039, "CGACTTACCA", "CG"), (55051040, "GACTTACCA", "G")),  # a deletion keeps one base
        ((100, "A", "aagc"), (100, "A", "AAGC")),  # an insertion keeps its anchor, upper-cased
        ((100, "t", "c"), (100, "T", "C")),  # equivalent spellings share one key whatever their case
        ((100, "aT", "Ac"), (101, "T", "C")),  # case does not hide a shared base
        ((5, "TCC", "TC"), (5, "TC", "T")),  # the suffix goes first: the deletion stays left
    ],
)
def test_minimal_keeps_one_base_in_each_allele_trimming_the_suffix_first(spelling, expected):
    assert minimal(*spelling) == expected


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ((10, "A", "G"), (10, "A", "G")),
        ((16390924, "AT", "AC"), (16390925, "T", "C")),
        ((10, "CAT", "CGT"), (11, "A", "G")),
        ((55051039, "CGACTTACCA", "CG"), (55051041, "ACTTACCA", "-")),  # nothing left of ALT: '-'
        ((100, "A", "AAGC"), (101, "-", "AGC")),  # an insertion: REF empty, POS after the anchor
        ((5, "TCC", "TC"), (7, "C", "-")),  # the prefix goes first: the deletion moves right
        ((7, "A", "A"), (8, "-", "-")),  # no change at all
        ((100, "aT", "Ac"), (100, "aT", "Ac")),  # bases compared as written: case is kept
    ],
)
def test_trimmed_removes_every_shared_base_prefix_first_writing_dash_for_empty(spelling, expected):
    assert trimmed(*spelling) == expected


@pytest.mark.parametrize("spelling", [(10, "CAT", "CGT"), (3, "GGA", "GA"), (9, "T", "TTT"), (1, "ACGT", "AGGT")])
def test_trimming_a_trimmed_spelling_changes_nothing(spelling):
    assert minimal(*minimal(*spelling)) == minimal(*spelling)
    pos, ref, alt = trimmed(*spelling)
    assert trimmed(pos, ref.replace("-", ""), alt.replace("-", "")) == (pos, ref, alt)
