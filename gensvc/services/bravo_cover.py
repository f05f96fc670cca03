"""Which Bravo queries answer a VCF's sites: the walk `bravo frequencies` takes.

Bravo answers a region query with one page of at most ``limit`` records, in position
order, from a window of at most ``MAX_REGION`` bp; a lone position is one /variant
request. The walk starts each query at the first site not yet answered and lets it reach
as far as Bravo allows; the page answers every site before its last record's position
(every site of the window when the page is the last one). The next query starts at the
first site left, so a page never pays for the records of a gap between two queries.

No plan reading pages in position order needs fewer requests, even one knowing every
record beforehand: the first site sits in some query of any plan, and that query, starting
at or before the site, reaches no further than the walk's, which starts at the site
itself. So the walk needs no estimate of the density: each page says where it ended.
"""

from __future__ import annotations

import bisect
import math
from typing import Callable, Iterator

MAX_REGION = 250_000  # bp from start to end of one /region query, as Bravo allows


def reach(positions: list[int], first: int, max_region: int = MAX_REGION) -> int:
    """Index of the furthest site one query from ``positions[first]`` can take in."""
    return bisect.bisect_right(positions, positions[first] + max_region - 1) - 1


def unanswered(positions: list[int], first: int, last: int, page_end: int | None) -> int:
    """Index of the first site a query over sites ``first..last`` left unanswered.

    ``page_end`` is the position of the last record read when more follow it (a full
    page), None when the window was read to its end. A full page may have left out more
    records at its last position, so sites there are asked for again.
    """
    if page_end is None:
        return last + 1
    return bisect.bisect_left(positions, page_end, first, last + 1)


def walk(positions: list[int], read: Callable[[int, int], int | None], first: int = 0,
         max_region: int = MAX_REGION) -> Iterator[int]:
    """Cover sorted, distinct ``positions`` query by query; yield after each the index of
    the first site still unanswered (``len(positions)`` at the end).

    ``read(start, end)`` asks Bravo for the window and returns ``unanswered``'s
    ``page_end``: None, or a position after ``start`` (a reader whose page ends at
    ``start`` itself, more records following there, reads on until it does not).
    """
    while first < len(positions):
        last = reach(positions, first, max_region)
        page_end = read(positions[first], positions[last])
        if page_end is not None and page_end <= positions[first]:
            raise ValueError(f"a page from {positions[first]} must end after it, not at {page_end}")
        first = unanswered(positions, first, last, page_end)
        yield first


def expected_requests(positions: list[int], density: float, page_size: int, max_region: int = MAX_REGION) -> int:
    """Requests the walk takes if Bravo holds ``density`` records per bp evenly: the plan
    shown before the first request (each page says where it really ended)."""
    per_page = max(1, math.floor(page_size / density))  # bp one full page covers
    count, first = 0, 0
    while first < len(positions):
        last = reach(positions, first, max_region)
        page_end = positions[first] + per_page
        first = unanswered(positions, first, last, page_end if page_end <= positions[last] else None)
        count += 1
    return count
