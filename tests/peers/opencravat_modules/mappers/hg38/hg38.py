"""Deterministic stand-in for OpenCRAVAT's hg38 mapper (written for gensvc's tests).

For a variant on chr1..chr22, chrX, chrY at position POS:
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
import json

from cravat import BaseMapper

CANONICAL = {"chr%s" % c for c in list(range(1, 23)) + ["X", "Y"]}


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
        so, achange, cchange = classify(pos, ref, alt)
        block = pos // 1000000
        hugo = "GS%s_%d" % (chrom[3:], block)
        transcript = "ENSTGS%s_%d.1" % (chrom[3:], block)
        out.update({
            "coding": "Yes", "hugo": hugo, "transcript": transcript, "so": so,
            "exonno": pos % 20 + 1, "cchange": cchange, "achange": achange,
            "all_mappings": json.dumps({hugo: [["PGS%s_%d" % (chrom[3:], block), achange, so, transcript, cchange]]}),
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
