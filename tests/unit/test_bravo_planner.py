"""The frequencies planner and allele matching of the Bravo client, in process (no server)."""

import bisect
import itertools
import random

import pytest

from gensvc.services.bravo import MAX_REGION, query_positions
from gensvc.services.bravo_cover import expected_requests, walk

# ALTs whose trimmed spelling starts after POS (issue 8, item 9) and where Bravo has them
TRIMMED_LATER = [
    (("22", 16390924, "AT", "AC"), ("22", 16390925)),
    (("chr1", 55051039, "CGACTTACCA", "CG"), ("1", 55051040)),
    (("chr17", 7681923, "CA", "CG"), ("17", 7681924)),
    (("chr17", 7681923, "CA", "GA"), ("17", 7681923)),
    (("22", 100, "at", "ac"), ("22", 101)),
]


class Walked:
    """The walk over ``positions`` against a Bravo holding a record at each of ``records``
    (a position repeats for each allele there), paging as Bravo does: a full page links to
    the next even when no record follows."""

    def __init__(self, positions, records, page, max_region=MAX_REGION):
        self.records, self.page = sorted(records), page
        self.windows, self.requests, self.answered = [], 0, set()
        for _ in walk(positions, self.read, max_region=max_region):
            pass

    def read(self, start, end):
        """As bravo.read_window reads a window: one page, then a /variant if that page
        ended where it began."""
        self.windows.append((start, end))
        held = self.records[bisect.bisect_left(self.records, start):bisect.bisect_right(self.records, end)]
        self.requests += 1
        if start == end or len(held) < self.page:  # a /variant, or the whole window in the page
            self.answered |= set(range(start, end + 1))
            return None
        page_end = held[self.page - 1]
        if page_end == start:
            self.requests += 1
            page_end = start + 1
        self.answered |= set(range(start, page_end))
        return page_end


def answered_by(windows, records, page):
    """Positions a set of single-page requests answers, seen as the walk sees a page: a
    window's first ``page`` records (all of them for a one-position window, a /variant); a
    full page may have left out records at its last position and after it, one with fewer
    answers its whole window."""
    records = sorted(records)
    answered = set()
    for start, end in windows:
        held = records[bisect.bisect_left(records, start):bisect.bisect_right(records, end)]
        if start == end or len(held) < page:
            answered |= set(range(start, end + 1))
        else:
            answered |= set(range(start, held[page - 1]))
    return answered


def fewest_requests_of_any_plan(positions, records, page, max_region):
    """By trying every set of single-page windows between sites, smallest first."""
    candidates = [(a, b) for a in positions for b in positions if a <= b and b - a < max_region]
    for size in range(1, len(positions) + 1):
        for windows in itertools.combinations(candidates, size):
            if set(positions) <= answered_by(windows, records, page):
                return size
    raise AssertionError("one window per site always answers them")


@pytest.mark.parametrize(("site", "bravo_site"), TRIMMED_LATER)
def test_a_lone_record_is_asked_for_where_its_alts_can_match(site, bravo_site):
    chrom, pos = bravo_site
    positions = query_positions([site])[chrom]
    walked = Walked(positions, [pos], page=1000)
    assert {pos, site[1]} <= walked.answered
    assert walked.requests == 1  # still one request for one record


def test_the_last_record_of_a_stretch_is_asked_for_where_its_alt_starts():
    stretch = [("22", pos, "A", "G") for pos in range(30_000_000, 30_020_000, 70)]
    sites = [*stretch, ("22", 30_020_050, "CT", "CA")]
    walked = Walked(query_positions(sites)["22"], range(30_000_000, 30_030_000, 9), page=1000)
    assert 30_020_051 in walked.answered
    assert {pos for _, pos, _, _ in stretch} <= walked.answered


def test_every_alt_of_a_multiallelic_record_is_planned():
    positions = query_positions([("chr17", 7681923, "CA", alt) for alt in ("GG", "GA", "CG")])
    assert positions == {"17": [7681923, 7681924]}


def test_symbolic_alts_and_unknown_chromosomes_are_not_planned():
    assert query_positions([("22", 10, "A", "<DEL>"), ("22", 11, "A", "*"), ("chrUn_x", 5, "A", "T")]) == {}


@pytest.mark.parametrize("seed", range(40))
def test_the_walk_answers_every_site_with_as_few_requests_as_any_plan_that_sees_a_page_as_it_does(seed):
    rng = random.Random(seed)
    span, page = rng.choice([(40, 2), (60, 3), (120, 4)])
    max_region = rng.choice([15, 40, 1000])
    # fewer records at a position than a page holds (a site with more: the test after the next)
    records = [p for p in range(1, span) for _ in range(rng.choice([0, 0, 1, 1, 1, page - 1]))]
    known = sorted(set(records))
    positions = sorted(set(rng.sample(known, min(len(known), rng.randint(1, 4)))
                           + rng.sample(range(1, span), rng.randint(0, 2))))
    walked = Walked(positions, records, page, max_region)
    assert all(end - start < max_region for start, end in walked.windows)
    assert set(positions) <= walked.answered
    best = fewest_requests_of_any_plan(positions, records, page, max_region)
    assert walked.requests == best


def test_no_positions_need_no_queries():
    walked = Walked([], [1, 2, 3], page=1000)
    assert walked.windows == [] and walked.requests == 0
    assert expected_requests([], density=0.1, page_size=1000) == 0


def test_far_apart_sites_are_asked_one_by_one_and_a_dense_stretch_a_page_at_a_time():
    far = [1_000, 2_000_000, 9_000_000]
    assert Walked(far, far, page=1000).windows == [(p, p) for p in far]
    stretch = list(range(5_000, 30_000, 10))  # 2,500 sites, a record at each and one between
    records = stretch + [p + 5 for p in stretch]
    walked = Walked(stretch, records, page=1000)
    windows, requests = walked.windows, walked.requests
    assert requests == 5  # 5,000 records: five full pages, none read for the records after the last site
    assert windows[0] == (5_000, 29_990) and windows[1][0] == 10_000  # the second begins where the first ended


def test_a_page_ending_amid_a_sites_alleles_asks_for_that_site_again():
    records = [10, 20, 30, 30, 30, 40]  # the page of five ends at 30: more may follow there, for all it shows
    walked = Walked([10, 30, 40], records, page=5)
    assert walked.windows == [(10, 40), (30, 40)] and walked.requests == 2


def test_more_records_at_one_site_than_a_page_holds_are_all_asked_for_at_once():
    records = [10, 10, 10, 10, 10, 20]
    walked = Walked([10, 20], records, page=2)
    # a page of two at 10, then /variant for all five there; 20 is then alone
    assert walked.windows == [(10, 20), (20, 20)] and walked.requests == 3
    assert walked.answered >= {10, 20}


def test_no_query_spans_more_than_bravo_allows_even_where_one_page_would_hold_it():
    wide = [1_000, 1_000 + MAX_REGION // 2, 1_000 + MAX_REGION + 10, 1_000 + MAX_REGION * 2]
    windows = Walked(wide, wide, page=1000).windows
    assert all(end - start < MAX_REGION for start, end in windows)
    assert windows == [(wide[0], wide[1]), (wide[2], wide[3])]


def test_the_expected_plan_is_what_the_walk_takes_where_bravo_holds_the_expected_density():
    stretch = list(range(1_000_000, 1_095_000, 7))
    records = list(range(1_000_000, 1_100_000, 10))  # 0.1 records per bp, 10,000 of them
    assert expected_requests(stretch, density=0.1, page_size=1000) == Walked(stretch, records, page=1000).requests == 10
