"""Hand-written reader for OpenCRAVAT's simple text input: chrom pos strand ref alt [sample [tags]]."""
from cravat import BaseConverter, BadFormatError

COMPLEMENT = {"A": "T", "T": "A", "G": "C", "C": "G", "-": "-"}


class CravatConverter(BaseConverter):
    def __init__(self):
        self.format_name = "cravat"

    def check_format(self, f):
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            toks = line.split()
            return len(toks) >= 5 and toks[2] in ("+", "-") and toks[1].isdigit()
        return False

    def setup(self, f):
        pass

    def convert_line(self, line):
        if line.startswith("#") or not line.strip():
            return self.IGNORE
        toks = line.split()
        if len(toks) < 5:
            raise BadFormatError("Wrong number of columns")
        chrom, pos, strand, ref, alt = toks[:5]
        ref, alt = ref.upper(), alt.upper()
        if strand == "-":
            ref = "".join(COMPLEMENT.get(b, b) for b in reversed(ref))
            alt = "".join(COMPLEMENT.get(b, b) for b in reversed(alt))
        rec = {"chrom": chrom, "pos": int(pos), "ref_base": ref, "alt_base": alt,
               "sample_id": toks[5] if len(toks) > 5 else None,
               "tags": toks[6] if len(toks) > 6 else None}
        return [rec]
