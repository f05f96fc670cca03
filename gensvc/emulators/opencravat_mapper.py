"""The OpenCRAVAT emulator's gene mapper (the module OpenCRAVAT 3.2.4 would run as `hg38`).

The gene mapper is deterministic and follows the emulators' shared synthetic gene model,
`data/gene_model.tsv` (the CGI emulator reads the same file, so both name the same gene and
a consequence of the same class; the test peer's stand-in mapper,
tests/peers/opencravat_modules/mappers/hg38, follows it too): a variant inside a modelled gene
gets that gene, transcript and a class, protein and cDNA change by the file's rules; elsewhere
on chr1-22/X/Y it lies in a filler gene `GS<chrom>_<POS // 1e6>` (class, protein and cDNA
changes from POS and the alleles); other contigs are intergenic.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path


MAPPER_NAME = "hg38"
MAPPER_TITLE = "Deterministic gene mapper"
MAPPER_VERSION = "1.0.0"
COMPLEMENT = {"A": "T", "T": "A", "C": "G", "G": "C", "-": "-", "N": "N"}
CANONICAL_CHROMS = frozenset("chr%s" % c for c in list(range(1, 23)) + ["X", "Y"])
MAPPER_COLUMNS = ("coding", "hugo", "transcript", "so", "exonno", "cchange", "achange",
                  "all_mappings", "gposend")


def _cdna_change(cpos: int, ref: str, alt: str) -> str:
    """HGVS c. notation of a variant at cDNA position ``cpos`` (bases as read on the gene's strand)."""
    if ref == "-":
        return "c.%d_%dins%s" % (cpos, cpos + 1, alt)
    if alt == "-":
        return "c.%ddel" % cpos if len(ref) == 1 else "c.%d_%ddel" % (cpos, cpos + len(ref) - 1)
    if len(ref) == 1 and len(alt) == 1:
        return "c.%d%s>%s" % (cpos, ref, alt)
    return "c.%d_%ddelins%s" % (cpos, cpos + len(ref) - 1, alt)


def _classify(pos: int, ref: str, alt: str) -> tuple[str, str, str]:
    aa = pos % 1000 + 1
    cchange = _cdna_change(pos % 3000 + 1, ref, alt)
    if ref == "-":
        if len(alt) % 3 == 0:
            return ("inframe_insertion",
                    "p.Ala%d_Gly%dins%s" % (aa, aa + 1, "Xaa" * (len(alt) // 3)), cchange)
        return "frameshift_elongation", "p.Ala%dfs" % aa, cchange
    if alt == "-":
        if len(ref) % 3 == 0:
            return "inframe_deletion", "p.Ala%ddel" % aa, cchange
        return "frameshift_truncation", "p.Ala%dfs" % aa, cchange
    if len(ref) == 1 and len(alt) == 1:
        if pos % 3 == 0:
            return "synonymous_variant", "p.Ala%d=" % aa, cchange
        return "missense_variant", "p.Ala%dVal" % aa, cchange
    return ("complex_substitution",
            "p.Ala%ddelins%s" % (aa, "Val" * max(1, len(alt) // 3)), cchange)


@dataclass(frozen=True)
class ModelGene:
    """One gene of the emulators' shared gene model (data/gene_model.tsv)."""
    symbol: str
    chrom: str  # with 'chr', as OpenCRAVAT names it
    start: int
    end: int
    strand: str
    transcript: str
    protein: str
    protein_length: int


GENE_MODEL_PATH = Path(__file__).with_name("data") / "gene_model.tsv"
AMINO = "ACDEFGHIKLMNPQRSTVWY"
THREE_LETTER = dict(zip(AMINO + "*", (
    "Ala Cys Asp Glu Phe Gly His Ile Lys Leu Met Asn Pro Gln Arg Ser Thr Val Trp Tyr Ter").split()))
_GENES: list[ModelGene] = []


def model_genes() -> list[ModelGene]:
    """The shared gene model, read once (the CGI emulator reads the same file itself)."""
    if not _GENES:
        lines = [line for line in GENE_MODEL_PATH.read_text().splitlines()
                 if line and not line.startswith("#")]
        for row in csv.DictReader(lines, delimiter="\t"):
            _GENES.append(ModelGene(row["symbol"], "chr" + row["chrom"], int(row["start"]),
                                    int(row["end"]), row["strand"], row["transcript"],
                                    row["protein"], int(row["protein_length"])))
    return _GENES


def model_gene_at(chrom: str, pos: int) -> ModelGene | None:
    return next((g for g in model_genes() if g.chrom == chrom and g.start <= pos <= g.end), None)


def _strand_bases(bases: str, strand: str) -> str:
    if strand == "+" or bases == "-":
        return bases
    return "".join(COMPLEMENT[b] for b in reversed(bases))


def _classify_in_gene(gene: ModelGene, pos: int, ref: str, alt: str) -> tuple[str, str, str]:
    """The gene model's rules (its header): SO term, protein change and cDNA change."""
    offset = pos - gene.start if gene.strand == "+" else gene.end - pos
    cpos = offset % (3 * gene.protein_length) + 1
    aa = (cpos - 1) // 3 + 1
    codon_base = (cpos - 1) % 3 + 1
    ref_aa = AMINO[aa % 20]
    ref_s, alt_s = _strand_bases(ref, gene.strand), _strand_bases(alt, gene.strand)
    here = THREE_LETTER[ref_aa] + str(aa)
    cchange = _cdna_change(cpos, ref_s, alt_s)
    if ref == "-":
        if len(alt) % 3 == 0:
            return ("inframe_insertion", "p.%s_%s%dins%s" % (
                here, THREE_LETTER[AMINO[(aa + 1) % 20]], aa + 1, "Xaa" * (len(alt) // 3)), cchange)
        return "frameshift_elongation", "p.%sfs" % here, cchange
    if alt == "-":
        if len(ref) % 3 == 0:
            return "inframe_deletion", "p.%sdel" % here, cchange
        return "frameshift_truncation", "p.%sfs" % here, cchange
    if len(ref) == 1 and len(alt) == 1:
        if codon_base == 3:
            return "synonymous_variant", "p.%s=" % here, cchange
        if codon_base == 1 and alt_s == "T":
            return "stop_gained", "p.%sTer" % here, cchange
        alt_aa = AMINO[(aa % 20 + 1 + "ACGT".index(alt_s)) % 20]
        return "missense_variant", "p.%s%s" % (here, THREE_LETTER[alt_aa]), cchange
    return "complex_substitution", "p.%sdelins%s" % (here, "Val" * max(1, len(alt) // 3)), cchange


def map_variant(chrom: str, pos: int, ref: str, alt: str) -> dict:
    """The mapper's columns for one variant: a gene of the shared model, else a filler gene."""
    gposend = pos + 1 if ref == "-" else pos + len(ref) - 1
    if chrom not in CANONICAL_CHROMS:
        return {"coding": "", "hugo": "", "transcript": "", "so": "", "exonno": None,
                "cchange": "", "achange": "", "all_mappings": "{}", "gposend": gposend}
    gene = model_gene_at(chrom, pos)
    if gene is not None:
        so, achange, cchange = _classify_in_gene(gene, pos, ref, alt)
        hugo, transcript, protein = gene.symbol, gene.transcript, gene.protein
    else:
        so, achange, cchange = _classify(pos, ref, alt)
        block = pos // 1_000_000
        short = chrom[3:]
        hugo = "GS%s_%d" % (short, block)
        transcript = "ENSTGS%s_%d.1" % (short, block)
        protein = "PGS%s_%d" % (short, block)
    return {
        "coding": "Yes", "hugo": hugo, "transcript": transcript, "so": so,
        "exonno": pos % 20 + 1, "cchange": cchange, "achange": achange,
        "all_mappings": json.dumps({hugo: [[protein, achange, so, transcript, cchange]]}),
        "gposend": gposend,
    }
