"""Deterministic stand-in for OpenCRAVAT's hg38 mapper (written for gensvc's tests).

A variant inside a gene of gene_model.tsv (the emulators' shared synthetic gene model, copied
here by tests/peers/opencravat_server.py from gensvc/emulators/data/) gets that gene,
transcript and protein, and a class, protein and cDNA change by the rules in that file's
header. Any other variant on chr1..chr22, chrX, chrY at position POS lies in a filler gene:
  hugo        GS<chrom without 'chr'>_<POS // 1000000>          e.g. chr7:140753336 -> GS7_140
  transcript  ENSTGS<chrom>_<POS // 1000000>.1
  exonno      POS % 20 + 1
  aa          POS % 1000 + 1    (protein position)   cpos = POS % 3000 + 1 (cDNA position)
  so / achange / cchange by variant class (ref/alt after OpenCRAVAT normalisation):
    SNV, POS % 3 != 0  missense_variant       p.Ala<aa>Val      c.<cpos><REF>><ALT>
    SNV, POS % 3 == 0  synonymous_variant     p.Ala<aa>=        c.<cpos><REF>><ALT>
    insertion (ref '-'), len(alt) % 3 == 0  inframe_insertion      p.Ala<aa>_Gly<aa+1>ins<Xaa*n>  c.<cpos>_<cpos+1>ins<ALT>
    insertion, otherwise                    frameshift_elongation  p.Ala<aa>fs                    c.<cpos>_<cpos+1>ins<ALT>
    deletion (alt '-'), len(ref) % 3 == 0   inframe_deletion       p.Ala<aa>del                   c.<cpos>_<cpos+len-1>del (c.<cpos>del if 1 base)
    deletion, otherwise                     frameshift_truncation  p.Ala<aa>fs                    same as above
    anything else (MNP / delins)            complex_substitution   p.Ala<aa>delins<Val*n>         c.<cpos>_<cpos+len(ref)-1>delins<ALT>
  coding "Yes"; gposend = POS + 1 for an insertion, else POS + len(ref) - 1.
Other chromosomes (chrM, contigs): intergenic, every mapper column empty, all_mappings '{}'.
"""
import csv
import json
import os

from cravat import BaseMapper

CANONICAL = {"chr%s" % c for c in list(range(1, 23)) + ["X", "Y"]}
AMINO = "ACDEFGHIKLMNPQRSTVWY"
THREE = dict(zip(AMINO + "*", "Ala Cys Asp Glu Phe Gly His Ile Lys Leu Met Asn Pro Gln Arg Ser "
                              "Thr Val Trp Tyr Ter".split()))
COMPLEMENT = {"A": "T", "C": "G", "G": "C", "T": "A", "N": "N"}


def read_gene_model():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gene_model.tsv")
    with open(path) as handle:
        lines = [line for line in handle if line.strip() and not line.startswith("#")]
    return [dict(row, chrom="chr" + row["chrom"], start=int(row["start"]), end=int(row["end"]),
                 protein_length=int(row["protein_length"]))
            for row in csv.DictReader(lines, delimiter="\t")]


GENES = read_gene_model()


def on_strand(bases, strand):
    if strand == "+" or bases == "-":
        return bases
    return "".join(COMPLEMENT[b] for b in reversed(bases))


def classify_in_gene(gene, pos, ref, alt):
    offset = pos - gene["start"] if gene["strand"] == "+" else gene["end"] - pos
    cpos = offset % (3 * gene["protein_length"]) + 1
    aa = (cpos - 1) // 3 + 1
    codon_base = (cpos - 1) % 3 + 1
    here = THREE[AMINO[aa % 20]] + str(aa)
    ref_s, alt_s = on_strand(ref, gene["strand"]), on_strand(alt, gene["strand"])
    if ref == "-":
        cchange = "c.%d_%dins%s" % (cpos, cpos + 1, alt_s)
        if len(alt) % 3 == 0:
            return ("inframe_insertion", "p.%s_%s%dins%s" % (here, THREE[AMINO[(aa + 1) % 20]], aa + 1,
                                                               "Xaa" * (len(alt) // 3)), cchange)
        return "frameshift_elongation", "p.%sfs" % here, cchange
    if alt == "-":
        cchange = "c.%ddel" % cpos if len(ref) == 1 else "c.%d_%ddel" % (cpos, cpos + len(ref) - 1)
        if len(ref) % 3 == 0:
            return "inframe_deletion", "p.%sdel" % here, cchange
        return "frameshift_truncation", "p.%sfs" % here, cchange
    if len(ref) == 1 and len(alt) == 1:
        cchange = "c.%d%s>%s" % (cpos, ref_s, alt_s)
        if codon_base == 3:
            return "synonymous_variant", "p.%s=" % here, cchange
        if codon_base == 1 and alt_s == "T":
            return "stop_gained", "p.%sTer" % here, cchange
        return "missense_variant", "p.%s%s" % (here, THREE[AMINO[(aa % 20 + 1 + "ACGT".index(alt_s)) % 20]]), cchange
    cchange = "c.%d_%ddelins%s" % (cpos, cpos + len(ref) - 1, alt_s)
    return "complex_substitution", "p.%sdelins%s" % (here, "Val" * max(1, len(alt) // 3)), cchange


def gposend(pos, ref, alt):
    if ref == "-":
        return pos + 1
    return pos + len(ref) - 1


def classify(pos, ref, alt):
    aa = pos % 1000 + 1
    cpos = pos % 3000 + 1
    if ref == "-":
        cchange = "c.%d_%dins%s" % (cpos, cpos + 1, alt)
        if len(alt) % 3 == 0:
            return "inframe_insertion", "p.Ala%d_Gly%dins%s" % (aa, aa + 1, "Xaa" * (len(alt) // 3)), cchange
        return "frameshift_elongation", "p.Ala%dfs" % aa, cchange
    if alt == "-":
        cchange = "c.%ddel" % cpos if len(ref) == 1 else "c.%d_%ddel" % (cpos, cpos + len(ref) - 1)
        if len(ref) % 3 == 0:
            return "inframe_deletion", "p.Ala%ddel" % aa, cchange
        return "frameshift_truncation", "p.Ala%dfs" % aa, cchange
    if len(ref) == 1 and len(alt) == 1:
        cchange = "c.%d%s>%s" % (cpos, ref, alt)
        if pos % 3 == 0:
            return "synonymous_variant", "p.Ala%d=" % aa, cchange
        return "missense_variant", "p.Ala%dVal" % aa, cchange
    cchange = "c.%d_%ddelins%s" % (cpos, cpos + len(ref) - 1, alt)
    return "complex_substitution", "p.Ala%ddelins%s" % (aa, "Val" * max(1, len(alt) // 3)), cchange


class Mapper(BaseMapper):
    def setup(self):
        pass

    def map(self, crv_data):
        out = dict(crv_data)
        chrom, pos = crv_data["chrom"], int(crv_data["pos"])
        ref, alt = crv_data["ref_base"], crv_data["alt_base"]
        out["gposend"] = gposend(pos, ref, alt)
        if chrom not in CANONICAL:
            for key in ("coding", "hugo", "transcript", "so", "cchange", "achange"):
                out[key] = ""
            out["exonno"] = None
            out["all_mappings"] = "{}"
            return out
        gene = next((g for g in GENES if g["chrom"] == chrom and g["start"] <= pos <= g["end"]), None)
        if gene is not None:
            so, achange, cchange = classify_in_gene(gene, pos, ref, alt)
            hugo, transcript, protein = gene["symbol"], gene["transcript"], gene["protein"]
        else:
            so, achange, cchange = classify(pos, ref, alt)
            block = pos // 1000000
            hugo = "GS%s_%d" % (chrom[3:], block)
            transcript = "ENSTGS%s_%d.1" % (chrom[3:], block)
            protein = "PGS%s_%d" % (chrom[3:], block)
        out.update({
            "coding": "Yes", "hugo": hugo, "transcript": transcript, "so": so,
            "exonno": pos % 20 + 1, "cchange": cchange, "achange": achange,
            "all_mappings": json.dumps({hugo: [[protein, achange, so, transcript, cchange]]}),
        })
        return out

    def summarize_by_gene(self, hugo, input_data):
        """Gene-level summary: variant count, most frequent SO term, 'term(count)' list."""
        counts = {}
        for so in input_data.get("so", []):
            if so:
                counts[so] = counts.get(so, 0) + 1
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return {
            "num_variants": len(input_data.get("uid", [])),
            "so": ordered[0][0] if ordered else "",
            "all_so": ",".join("%s(%d)" % kv for kv in ordered),
        }
