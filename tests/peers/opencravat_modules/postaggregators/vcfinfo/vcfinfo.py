"""Copies the VCF converter's per-sample fields onto the variant (gensvc test stub)."""
from cravat import BasePostAggregator

FIELDS = ["phred", "filter", "zygosity", "alt_reads", "tot_reads", "af"]


class CravatPostAggregator(BasePostAggregator):
    def check(self):
        self.cursor.execute("pragma table_info(sample)")
        self.present = [f for f in FIELDS if "base__" + f in {r[1] for r in self.cursor.fetchall()}]
        return bool(self.present)

    def annotate(self, input_data):
        cols = ", ".join("base__" + f for f in self.present)
        self.cursor.execute("select %s from sample where base__uid=?" % cols, [int(input_data["base__uid"])])
        rows = self.cursor.fetchall()
        out = {}
        for i, name in enumerate(self.present):
            values = [str(r[i]) for r in rows if r[i] is not None and r[i] != ""]
            if values:
                out[name] = ";".join(values)
        return out or None
