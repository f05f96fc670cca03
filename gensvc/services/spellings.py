"""How the services write a variant in their result files: OpenCRAVAT's and CGI's alleles and
chromosome names, and the columns of the Bravo frequencies table.

Their operations modules use these, and so does merge, which reads those files in processes
of their own: kept apart from the clients, a merge process does not import the HTTP stack
(about 18 MB a process, measured).
"""

from __future__ import annotations

from gensvc.alleles import trimmed

# the table `bravo frequencies` writes
TABLE_COLUMNS = (
    "chrom", "pos", "ref", "alt", "bravo_variant_id", "allele_freq", "allele_count", "allele_num", "filter", "found",
)


def oc_allele(chrom: str, pos: int, ref: str, alt: str) -> tuple[str, int, str, str]:
    """A VCF allele as OpenCRAVAT writes it: every shared base trimmed (``alleles.trimmed``),
    ``chr`` names."""
    name = chrom if chrom.lower().startswith("chr") else f"chr{chrom}"
    if name.lower() in ("chrmt", "chrm"):
        name = "chrM"
    return (name, *trimmed(pos, ref, alt))


def variant_key(chrom: str, pos, ref: str, alt: str) -> tuple[str, int, str, str]:
    """A variant as the merge step joins CGI's rows: no ``chr``, ALT as written."""
    name = str(chrom)
    name = name[3:] if name.lower().startswith("chr") else name
    return name, int(pos), ref, alt


def cgi_alleles(ref: str, alt: str) -> tuple[str, str]:
    """REF/ALT as CGI writes them in alterations.tsv: every shared base trimmed
    (``alleles.trimmed``; its POSITION column moves too, but the input's own POS is kept
    beside it, and that is what a record is found by)."""
    return trimmed(0, ref, alt)[1:]


def input_key(chrom: str, pos, ref: str, alt: str) -> tuple[str, int, str, str]:
    """The key of one ALT of an input record, as CGI's ``parse_alterations`` keys its rows."""
    return variant_key(chrom, pos, *cgi_alleles(ref, alt))
