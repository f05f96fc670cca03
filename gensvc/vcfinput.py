"""Users' VCF inputs, opened one way by every operation that reads one.

Plain text, bgzip and plain gzip are all read: plain gzip is common, and htslib refuses it
when given a file name (it seeks, which plain gzip cannot do), so pysam gets an open handle
instead. A file that is not a usable VCF is refused in one line saying what it is (empty,
no header, not a VCF, no #CHROM line, a damaged gzip file, a malformed record at line N)
rather than pysam's "is it VCF/BCF format?". pysam is imported only when records are read.
"""

from __future__ import annotations

from typing import Iterator

from gensvc.core.textfiles import open_binary, open_text
from gensvc.errors import UsageError

VCF_SUFFIXES = (".vcf", ".vcf.gz", ".vcf.bgz")
HINT = "give a VCF: plain, bgzip or gzip"


def has_vcf_name(path: str) -> bool:
    return str(path).lower().endswith(VCF_SUFFIXES)


def starts_as_vcf(path: str) -> bool:
    """True when the content begins like a VCF (first line ``##fileformat=VCF``)."""
    try:
        with open_text(path) as handle:
            return handle.readline().startswith("##fileformat=VCF")
    except (OSError, UsageError):
        return False


def read_header(handle, path: str, label: str = "input") -> tuple[list[str], str]:
    """The ``##`` lines and the ``#CHROM`` line from an open text handle, which is left at the
    first record; refuses, saying what it is, anything that is not a VCF."""
    first = handle.readline()
    if not first.strip():
        if first == "" or not any(line.strip() for line in handle):
            raise UsageError(f"{label} {path} is empty", hint=HINT)
        raise UsageError(f"{label} {path} is not a VCF (it begins with an empty line, not ##fileformat=VCF)", hint=HINT)
    if not first.startswith("##fileformat=VCF"):
        if first.startswith("#CHROM") or _looks_like_record(first):
            raise UsageError(f"{label} {path} has no VCF header (it begins with "
                             f"{'the #CHROM line' if first.startswith('#CHROM') else 'a record'}, not ##fileformat=VCF)",
                             hint="put the header back (bcftools reheader), or give the original VCF")
        raise UsageError(f"{label} {path} is not a VCF (its first line is not ##fileformat=VCF)", hint=HINT)
    meta = [first.rstrip("\r\n")]
    for line in handle:
        if line.startswith("##"):
            meta.append(line.rstrip("\r\n"))
        elif line.startswith("#CHROM"):
            columns = line.rstrip("\r\n")
            if len(columns.split("\t")) < 8:
                raise UsageError(f"{label} {path}: the #CHROM line has fewer than 8 tab-separated columns", hint=HINT)
            return meta, columns
        else:
            break
    raise UsageError(f"{label} {path} has no #CHROM header line (the VCF header ends without it)", hint=HINT)


def check_header(path: str, label: str = "input") -> tuple[list[str], str]:
    """``read_header`` of the file at ``path``."""
    with open_text(path) as handle:
        return read_header(handle, path, label)


def _looks_like_record(line: str) -> bool:
    columns = line.rstrip("\r\n").split("\t")
    return len(columns) >= 8 and columns[1].isdigit()


def _is_bcf(path: str) -> bool:
    try:
        with open_binary(path) as handle:
            return handle.read(3) == b"BCF"
    except UsageError:
        return False


def vcf_records(path: str, label: str = "input") -> Iterator:
    """Every record of a VCF (or BCF) as ``pysam.VariantRecord``, in file order; the header is
    checked first, and a record pysam refuses is named by its line."""
    if not _is_bcf(path):
        check_header(path, label)
    import pysam  # only operations that read records need it

    pysam.set_verbosity(0)  # htslib's warnings (e.g. contigs missing from the header) are not errors
    with open(path, "rb") as raw:
        try:
            vcf = pysam.VariantFile(raw)  # a handle, not a name: see the module's docstring
        except (OSError, ValueError) as exc:
            _read_through(path)  # a damaged gzip file says so
            raise UsageError(f"{label} {path} has a VCF header that cannot be parsed ({_reason(exc)})",
                             hint="check its ## lines") from None
        try:
            count = 0
            while True:
                try:
                    record = next(vcf)
                except StopIteration:
                    return
                except (OSError, ValueError, TypeError) as exc:  # TypeError: pysam formatting its own error about a handle
                    raise _record_error(path, label, count, exc) from None
                count += 1
                yield record
        finally:
            try:
                vcf.close()
            except (OSError, TypeError):  # a read-only file: nothing is lost; the error, if any, is raised above
                pass


def _reason(exc: Exception) -> str:
    text = str(exc)
    return text.split(" (mode=")[0].split("`")[0].strip() or type(exc).__name__


def _read_through(path: str) -> None:
    with open_text(path) as handle:
        for _ in handle:
            pass


def _record_error(path: str, label: str, good: int, exc: Exception) -> UsageError:
    """Which record pysam stopped at, found in the text; first, a damaged gzip file says so
    (htslib stops at the damaged block, some records before where the damage is)."""
    _read_through(path)
    with open_text(path) as handle:
        number, seen = 0, 0
        for number, line in enumerate(handle, 1):
            if line.startswith("#") or not line.strip():
                continue
            if seen == good:
                excerpt = line.rstrip("\r\n")
                excerpt = excerpt if len(excerpt) <= 60 else excerpt[:57] + "..."
                return UsageError(f"{label} {path}: the record at line {number} cannot be read: {excerpt!r}",
                                  hint="fix that line (tab-separated CHROM POS ID REF ALT QUAL FILTER INFO)")
            seen += 1
    return UsageError(f"{label} {path}: cannot read past record {good} ({_reason(exc)})", hint=HINT)
