"""The sample VCF as merge reads it: its header, then its records as lines."""

from __future__ import annotations

from gensvc.vcfinput import read_header


def read_vcf_header(handle, path: str) -> tuple[list[str], str]:
    """The ``##`` lines and the ``#CHROM`` line; refuses, saying what it is, anything that is not a VCF."""
    return read_header(handle, path, "vcf input")


def record_lines(handle):
    """``(line, its first 9 columns and the rest, ())`` for each record after the header, line
    ends stripped; empty lines skipped (as ``join_records`` does, to stay in step)."""
    for line in handle:
        if line != "\n":
            line = line.rstrip("\n")
            yield line, line.split("\t", 8), ()
