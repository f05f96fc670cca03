"""The genome build of a VCF, read from its header, and the name to send a service.

Evidence, all of it read from the ``##`` lines (never the records):
- ``##contig`` lengths of the main chromosomes, which differ between builds
  (chr1 is 248,956,422 bp on GRCh38 and 249,250,621 on GRCh37);
- an assembly named in ``##reference``, ``##assembly`` or a contig's ``assembly=``
  field: hg38, GRCh38, hg19, GRCh37, b37, or a FASTA such as human_g1k_v37.fasta.

When the pieces disagree the header cannot be trusted, and the caller is told so
rather than guessing. A header with no evidence at all is common (hand-made or
stripped files): then the service's documented default applies, and the log says so.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from gensvc.core.textfiles import open_text
from gensvc.errors import UsageError

log = logging.getLogger("gensvc.genome_build")

AUTO = "auto"  # the params value meaning: read the build from the input's header

# main chromosome lengths, as every FASTA of the build has them (chrM/MT left out:
# GRCh37's MT and GRCh38's chrM are the same sequence)
CONTIG_LENGTHS = {
    "GRCh38": {
        "1": 248956422, "2": 242193529, "3": 198295559, "4": 190214555, "5": 181538259,
        "6": 170805979, "7": 159345973, "8": 145138636, "9": 138394717, "10": 133797422,
        "11": 135086622, "12": 133275309, "13": 114364328, "14": 107043718, "15": 101991189,
        "16": 90338345, "17": 83257441, "18": 80373285, "19": 58617616, "20": 64444167,
        "21": 46709983, "22": 50818468, "X": 156040895, "Y": 57227415,
    },
    "GRCh37": {
        "1": 249250621, "2": 243199373, "3": 198022430, "4": 191154276, "5": 180915260,
        "6": 171115067, "7": 159138663, "8": 146364022, "9": 141213431, "10": 135534747,
        "11": 135006516, "12": 133851895, "13": 115169878, "14": 107349540, "15": 102531392,
        "16": 90354753, "17": 81195210, "18": 78077248, "19": 59128983, "20": 63025520,
        "21": 48129895, "22": 51304566, "X": 155270560, "Y": 59373566,
    },
    "NCBI36": {"1": 247249719},
    "CHM13": {"1": 248387328},
}

# words that name a build inside a reference name or path, lowercased
_NAMES = (
    ("GRCh38", re.compile(r"(grch38|hg38|hs38|b38|assembly38)\w*")),
    ("GRCh37", re.compile(r"(grch37|hg19|hs37|b37|assembly19)\w*")),
    ("NCBI36", re.compile(r"(ncbi36|hg18|b36)\w*")),
    ("CHM13", re.compile(r"(chm13|t2t)\w*|hs1")),
)
_CONTIG = re.compile(r"^##contig=<(.*)>\s*$")
_FIELD = re.compile(r'(\w+)=("[^"]*"|[^,]*)')


@dataclass(frozen=True)
class Build:
    """A build found in a header, and the header text that says so."""

    name: str  # GRCh38, GRCh37, NCBI36 or CHM13
    evidence: str


class ConflictingBuilds(ValueError):
    """The header names more than one build."""

    def __init__(self, builds: list[Build]):
        self.builds = builds
        super().__init__(" but ".join(f"{b.name} ({b.evidence})" for b in builds))


def build_named(text: str) -> str | None:
    """The build a name such as ``hg19``, ``GRCh38.p14`` or ``/ref/human_g1k_v37.fasta`` means."""
    text = str(text).lower()
    if "g1k_v37" in text:  # the 1000 Genomes GRCh37 FASTA; "v37" alone could be any release 37
        return "GRCh37"
    for word in re.split(r"[^a-z0-9]+", text):
        for build, pattern in _NAMES:
            if pattern.fullmatch(word):
                return build
    return None


def header_lines(path: str) -> list[str]:
    """The ``##`` lines at the top of a VCF, plain or compressed."""
    lines = []
    with open_text(path) as handle:
        for line in handle:
            if not line.startswith("##"):
                break
            lines.append(line.rstrip("\n"))
    return lines


def builds_in_header(lines: list[str]) -> list[Build]:
    """Every build the header lines point to, one entry per build (its first evidence)."""
    found: dict[str, Build] = {}
    for line in lines:
        for build in _line_builds(line):
            found.setdefault(build.name, build)
    return list(found.values())


def _line_builds(line: str):
    key, _, value = line[2:].partition("=")
    if key in ("reference", "assembly"):
        name = build_named(value)
        if name:
            yield Build(name, f"##{key}={value.strip()}")
        return
    match = _CONTIG.match(line)
    if not match:
        return
    fields = {k: v.strip('"') for k, v in _FIELD.findall(match.group(1))}
    contig = fields.get("ID", "")
    if fields.get("assembly"):
        name = build_named(fields["assembly"])
        if name:
            yield Build(name, f"##contig {contig} assembly={fields['assembly']}")
    chrom = re.sub(r"^chr", "", contig, flags=re.I).upper()
    length = fields.get("length", "")
    for name, lengths in CONTIG_LENGTHS.items():
        if length.isdigit() and lengths.get(chrom) == int(length):
            yield Build(name, f"##contig {contig} length {int(length):,}")


def read_build(path: str) -> Build | None:
    """The build of the VCF at ``path``; None when its header says nothing.

    Raises ConflictingBuilds when the header points to two builds.
    """
    builds = builds_in_header(header_lines(path))
    if len(builds) > 1:
        raise ConflictingBuilds(builds)
    return builds[0] if builds else None


def choose_build(vcfs: list[str], given: str, *, served: dict[str, str], fallback: str, param: str,
                 service: str) -> str:
    """The build name to send ``service`` for inputs ``vcfs``.

    ``given`` other than ``auto`` is the caller's choice and wins (a header that
    disagrees earns a warning). Otherwise the build the VCF headers name, spelt
    as the service spells it (``served`` maps GRCh38 -> hg38 and so on); a build
    the service does not serve is refused before anything is sent; no evidence
    at all gives ``fallback``.
    """
    found: list[tuple[str, Build]] = []
    problems: list[str] = []
    for path in vcfs:
        try:
            build = read_build(path)
        except ConflictingBuilds as exc:
            problems.append(f"the header of {path} names {exc}")
            continue
        if build:
            found.append((path, build))
    if given != AUTO:
        for path, build in found:
            if build_named(given) != build.name:
                log.warning("genome build: params %s %s overrides the header of %s (%s, %s)",
                            param, given, path, build.name, build.evidence)
        return given
    builds = {build.name for _, build in found}
    if len(builds) > 1:
        problems.append("the inputs are on different builds: "
                        + ", ".join(f"{path} {b.name} ({b.evidence})" for path, b in found))
    if problems:
        raise UsageError(problems[0], hint=f"fix the header, or give params {param} to say which build it is")
    if not found:
        log.info("genome build: not found in the header of %s; using %s %s (the default)",
                 ", ".join(vcfs) or "the input", param, fallback)
        return fallback
    path, build = found[0]
    if build.name not in served:
        raise UsageError(
            f"{path} is on {build.name} ({build.evidence}), but {service} serves {', '.join(served.values())} only",
            hint=f"lift the VCF over, or give params {param} {next(iter(served.values()))} if its header is wrong",
        )
    log.info("genome build: %s from the header of %s (%s); using %s %s",
             build.name, path, build.evidence, param, served[build.name])
    return served[build.name]
