"""Zygosity per variant when the input carried genotypes (gensvc test stub)."""
from cravat import BasePostAggregator


class CravatPostAggregator(BasePostAggregator):
    def setup(self):
        self.cursor.execute("pragma table_info(sample)")
        self.has_zygosity = any(r[1] == "base__zygosity" for r in self.cursor.fetchall())

    def annotate(self, input_data):
        if not self.has_zygosity:
            return None
        self.cursor.execute("select base__zygosity from sample where base__uid=? and base__zygosity is not null",
                            [int(input_data["base__uid"])])
        values = sorted({r[0] for r in self.cursor.fetchall()})
        return {"zygosity": ";".join(values)} if values else None
