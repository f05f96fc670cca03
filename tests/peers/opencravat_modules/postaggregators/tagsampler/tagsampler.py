"""Per-variant sample list and input tags (gensvc test stub)."""
from cravat import BasePostAggregator


class CravatPostAggregator(BasePostAggregator):
    def annotate(self, input_data):
        uid = int(input_data["base__uid"])
        self.cursor.execute(
            "select distinct base__sample_id from sample where base__uid=? and base__sample_id is not null "
            "and base__sample_id != ''", [uid])
        samples = [r[0] for r in self.cursor.fetchall()]
        self.cursor.execute("select distinct base__tags from mapping where base__uid=? and base__tags is not null "
                            "and base__tags != ''", [uid])
        tags = sorted(r[0] for r in self.cursor.fetchall())
        return {"numsample": len(samples), "samples": ";".join(samples), "tags": ";".join(tags)}
