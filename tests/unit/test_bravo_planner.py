"""The frequencies planner and allele matching of the Bravo client, in process (no server)."""

import itertools
import math
import random

import pytest

from gensvc.services.bravo import MAX_REGION, plan_queries, query_positions

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



def cost(group: list[int], per_page: float) -> float:
    """What the planner counts for one query over ``group``: a site is one request, a stretch a page per ``per_page`` bp."""
    if len(group) == 1:
        return 1
    width = group[-1] - group[0] + 1
    return math.ceil(width / per_page) if width <= MAX_REGION else math.inf


def cheapest_by_trying_every_split(positions: list[int], per_page: float) -> float:
    best = math.inf
    for cuts in itertools.product([False, True], repeat=len(positions) - 1):
        groups, start = [], 0
        for at, cut in enumerate(cuts, start=1):
            if cut:
                groups.append(positions[start:at])
                start = at
        groups.append(positions[start:])
        best = min(best, sum(cost(group, per_page) for group in groups))
    return best


def plan_cost(spans, positions, per_page):
    return sum(cost([p for p in positions if start <= p <= end], per_page) for start, end in spans)


@pytest.mark.parametrize("seed", range(12))
def test_the_plan_covers_every_position_once_at_the_least_cost_of_any_split(seed):
    rng = random.Random(seed)
    positions = sorted(rng.sample(range(1, rng.choice([3_000, 30_000, 600_000])), rng.randint(1, 9)))
    density, page_size = rng.choice([(0.1, 1000), (0.5, 100), (0.01, 50)])
    spans = plan_queries(positions, density, page_size)
    assert sorted(p for p in positions for start, end in spans if start <= p <= end) == positions  # once each
    assert all(a[1] < b[0] for a, b in zip(spans, spans[1:]))  # in order, apart
    assert all(end - start < MAX_REGION for start, end in spans)
    per_page = page_size / density
    assert plan_cost(spans, positions, per_page) == cheapest_by_trying_every_split(positions, per_page)


def test_no_positions_need_no_queries():
    assert plan_queries([], density=0.1) == []


def test_far_apart_sites_are_asked_one_by_one_and_a_dense_stretch_as_one_region():
    assert plan_queries([1_000, 2_000_000, 9_000_000], density=0.1) == [(1_000, 1_000), (2_000_000, 2_000_000),
                                                                         (9_000_000, 9_000_000)]
    dense = list(range(5_000, 6_000, 10))
    assert plan_queries(dense, density=0.1) == [(5_000, 5_990)]


def test_no_region_spans_more_than_bravo_allows_even_where_one_page_would_hold_it():
    # at a density this low one page would cover 10 Mbp; Bravo serves at most MAX_REGION per query
    wide = [1_000, 1_000 + MAX_REGION // 2, 1_000 + MAX_REGION + 10, 1_000 + MAX_REGION * 2]
    spans = plan_queries(wide, density=0.0001)
    assert all(end - start < MAX_REGION for start, end in spans)
    assert spans == [(wide[0], wide[1]), (wide[2], wide[3])]
