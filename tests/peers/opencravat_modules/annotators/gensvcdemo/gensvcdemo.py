"""Deterministic annotator for gensvc's tests; formulas are in gensvcdemo.yml."""
from cravat import BaseAnnotator


def annotate_variant(chrom, pos, ref, alt):
    return {
        "score": ((int(pos) * 31 + len(ref) * 7 + len(alt) * 13) % 1000) / 1000,
        "allele": "%s:%s:%s>%s" % (chrom, pos, ref, alt),
        "gc": sum(ref.count(b) + alt.count(b) for b in "GC"),
    }


class CravatAnnotator(BaseAnnotator):
    def setup(self):
        pass

    def annotate(self, input_data, secondary_data=None):
        return annotate_variant(input_data["chrom"], input_data["pos"],
                                input_data["ref_base"], input_data["alt_base"])

    def cleanup(self):
        pass
