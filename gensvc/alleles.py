"""One spelling of a variant's alleles, whatever service wrote it.

The same change can be written many ways in a VCF (``AT>AC`` at 10 is ``T>C`` at 11);
services each trim it to one spelling of their own, and matching their answers to the
input means trimming the input the same way. Two trims cover the three services:

- ``minimal``: the VCF-style form (Bravo's): at least one base kept in each allele,
  the shared suffix removed first, then the shared prefix (POS moves right by it).
- ``trimmed``: every shared base removed (OpenCRAVAT's and CGI's): the shared prefix
  first (POS moves right by it), then the shared suffix; ``-`` for an empty allele.

Chromosome names are each service's own affair and stay in its module. The emulators
keep their own spelling rules, written from the services' documentation, so that a
test compares two independent readings.
"""

from __future__ import annotations

EMPTY = "-"


def minimal(pos: int, ref: str, alt: str) -> tuple[int, str, str]:
    """The VCF-style minimal spelling; bases upper-cased (VCF bases are case-insensitive)."""
    ref, alt = ref.upper(), alt.upper()
    end = 0  # shared suffix, leaving one base in each
    while end < min(len(ref), len(alt)) - 1 and ref[-1 - end] == alt[-1 - end]:
        end += 1
    if end:
        ref, alt = ref[:-end], alt[:-end]
    start = 0  # then the shared prefix, leaving one base in each
    while start < min(len(ref), len(alt)) - 1 and ref[start] == alt[start]:
        start += 1
    return pos + start, ref[start:], alt[start:]


def trimmed(pos: int, ref: str, alt: str) -> tuple[int, str, str]:
    """Every shared base removed, prefix first; ``-`` for an empty allele. Case is kept."""
    start = 0
    while start < min(len(ref), len(alt)) and ref[start] == alt[start]:
        start += 1
    ref, alt = ref[start:], alt[start:]
    end = 0
    while end < min(len(ref), len(alt)) and ref[-1 - end] == alt[-1 - end]:
        end += 1
    if end:
        ref, alt = ref[:-end], alt[:-end]
    return pos + start, ref or EMPTY, alt or EMPTY
