"""OpenCGA's records as files: variants as TSV, JSON lines or VCF; catalog entries as TSV or
JSON. Each writer takes pages as they come, so a query of any size is written through."""

from __future__ import annotations

import json

VARIANT_COLUMNS = ("chromosome", "start", "end", "reference", "alternate", "id", "type", "genes",
                   "consequence", "samples")

# the columns of a catalog search's TSV, by resource: dotted paths into each record
CATALOG_COLUMNS = {
    "projects": ("id", "fqn", "name", "description", "organism.assembly"),
    "studies": ("id", "fqn", "name", "alias", "description"),
    "samples": ("id", "individualId", "somatic", "fileIds", "internal.status.id"),
    "files": ("id", "path", "name", "type", "format", "bioformat", "size", "internal.status.id",
              "internal.variant.index.status.id"),
    "individuals": ("id", "name", "sex.id", "samples.id", "internal.status.id"),
    "jobs": ("id", "tool.id", "internal.status.id", "creationDate", "tags", "description"),
}


def pick(record, path: str):
    """The value at a dotted path; through lists, the values of each item."""
    value = record
    for key in path.split("."):
        if isinstance(value, list):
            value = [item.get(key) for item in value if isinstance(item, dict)]
        elif isinstance(value, dict):
            value = value.get(key)
        else:
            return None
    return value


def cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(cell(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    # a tab or line break inside a value must not make a new column or row
    return " ".join(str(value).split("\t")).replace("\r", " ").replace("\n", " ")


def _consequences(variant: dict) -> tuple[list[str], list[str]]:
    genes, terms = [], []
    for consequence in (variant.get("annotation") or {}).get("consequenceTypes") or []:
        if consequence.get("geneName") and consequence["geneName"] not in genes:
            genes.append(consequence["geneName"])
        for term in consequence.get("sequenceOntologyTerms") or []:
            if term.get("name") and term["name"] not in terms:
                terms.append(term["name"])
    return genes, terms


def _samples(variant: dict) -> list[tuple[str, str]]:
    """(sample, GT) of the variant's first study."""
    studies = variant.get("studies") or []
    if not studies:
        return []
    keys = studies[0].get("sampleDataKeys") or ["GT"]
    at = keys.index("GT") if "GT" in keys else 0
    calls = []
    for sample in studies[0].get("samples") or []:
        data = sample.get("data") or []
        calls.append((str(sample.get("sampleId", "")), str(data[at]) if len(data) > at else "."))
    return calls


class VariantWriter:
    """Variants to ``handle`` in ``fmt`` (tsv, jsonl, vcf); ``count`` says how many."""

    def __init__(self, handle, fmt: str):
        self.handle, self.fmt, self.count = handle, fmt, 0
        self.samples: list[str] | None = None
        if fmt == "tsv":
            handle.write("\t".join(VARIANT_COLUMNS) + "\n")

    def write(self, variants: list[dict]) -> None:
        for variant in variants:
            getattr(self, f"_{self.fmt}")(variant)
            self.count += 1

    def close(self) -> None:
        if self.fmt == "vcf" and self.samples is None:
            self._vcf_header([])

    def _tsv(self, variant: dict) -> None:
        genes, terms = _consequences(variant)
        row = {**{k: variant.get(k) for k in VARIANT_COLUMNS}, "genes": genes, "consequence": terms,
               "samples": [f"{name}:{gt}" for name, gt in _samples(variant)]}
        self.handle.write("\t".join(cell(row[k]) for k in VARIANT_COLUMNS) + "\n")

    def _jsonl(self, variant: dict) -> None:
        self.handle.write(json.dumps(variant, sort_keys=True) + "\n")

    def _vcf_header(self, samples: list[str]) -> None:
        self.samples = samples
        self.handle.write("##fileformat=VCFv4.2\n##source=gensvc opencga query\n"
                          '##INFO=<ID=GENE,Number=.,Type=String,Description="Genes (OpenCGA annotation)">\n'
                          '##INFO=<ID=CT,Number=.,Type=String,Description="Consequence types (OpenCGA annotation)">\n'
                          '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n')
        columns = ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"]
        self.handle.write("\t".join(columns + (["FORMAT", *samples] if samples else [])) + "\n")

    def _vcf(self, variant: dict) -> None:
        calls = dict(_samples(variant))
        if self.samples is None:
            self._vcf_header(list(calls))
        pos, ref, alt = int(variant.get("start") or 0), variant.get("reference") or "", variant.get("alternate") or ""
        if not ref or not alt:
            # OpenCGA trims the shared base of an indel and the answer has no reference
            # sequence: N stands for the base before it
            pos, ref, alt = pos - 1, "N" + ref, "N" + alt
        genes, terms = _consequences(variant)
        info = ";".join(f"{key}={','.join(values)}" for key, values in (("GENE", genes), ("CT", terms)) if values)
        names = [n for n in variant.get("names") or [] if n]
        row = [str(variant.get("chromosome", "")), str(pos), ";".join(names) or ".", ref, alt, ".", ".", info or "."]
        if self.samples:
            row += ["GT", *(calls.get(name, ".") for name in self.samples)]
        self.handle.write("\t".join(row) + "\n")


class CatalogWriter:
    """Catalog records (projects, studies, samples, ...) as TSV or JSON (one array)."""

    def __init__(self, handle, fmt: str, resource: str):
        self.handle, self.fmt, self.count = handle, fmt, 0
        self.columns = CATALOG_COLUMNS[resource]
        if fmt == "tsv":
            handle.write("\t".join(self.columns) + "\n")
        else:
            handle.write("[")

    def write(self, records: list[dict]) -> None:
        for record in records:
            if self.fmt == "tsv":
                self.handle.write("\t".join(cell(pick(record, c)) for c in self.columns) + "\n")
            else:
                self.handle.write(("\n" if self.count == 0 else ",\n") + json.dumps(record, sort_keys=True))
            self.count += 1

    def close(self) -> None:
        if self.fmt == "json":
            self.handle.write("\n]\n" if self.count else "]\n")
