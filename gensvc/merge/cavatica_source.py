"""CAVATICA's output VCF as a source of INFO fields.

A CAVATICA app (the emulator's vcf-score, say) writes the input VCF back with INFO fields of
its own. Those a source carries are the ``CAV_*`` ones its header declares (or the ``columns``
named), each added to the merged VCF under a ``CAV_`` name. The join reads one row per
allele, so the VCF is first cut into a table with one row per ALT (a Number=A value split
among the ALTs, any other value repeated for each), written to a temporary file; the
table's first line keeps each field's type and description, so that a merge worker reading
the table (not the VCF) knows them too.
"""

from __future__ import annotations

import atexit
import os
import re
import tempfile

from gensvc.core.textfiles import open_text
from gensvc.merge.sources import Field, Source

_INFO = re.compile(r'^##INFO=<ID=([^,>]+),Number=([^,>]+),Type=([^,>]+)(?:,Description="((?:[^"\\]|\\.)*)")?')
TABLE_MARK = "#gensvc cavatica alleles"


def _declared(handle) -> tuple[dict[str, tuple[str, str, str]], list[str]]:
    """INFO id -> (Number, Type, Description) from a VCF's header; its column line."""
    declared = {}
    for line in handle:
        if line.startswith("##"):
            match = _INFO.match(line)
            if match:
                declared[match[1]] = (match[2], match[3], match[4] or match[1])
            continue
        return declared, line.rstrip("\r\n").lstrip("#").split("\t")
    return declared, []


def _info_values(text: str) -> dict[str, str]:
    values = {}
    for item in text.split(";"):
        key, sep, value = item.partition("=")
        values[key] = value if sep else "1"
    return values


def alleles_table(path: str, wanted: list[str] | None, refuse) -> str:
    """The VCF at ``path`` as a table of one row per ALT; the temporary file's path."""
    with open_text(path) as handle:
        declared, columns = _declared(handle)
        if columns[:8] != ["CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"]:
            refuse("has no #CHROM header line of a VCF")
        carried = list(wanted) if wanted else [i for i in declared if i.startswith("CAV_")]
        unknown = [c for c in carried if c not in declared]
        if unknown:
            refuse(f"declares no INFO {', '.join(unknown)}", hint=f"its INFO fields: {', '.join(declared)}")
        if not carried:
            refuse("declares no CAV_ INFO field (not the output of a CAVATICA app that adds one?)",
                   hint="name the fields to carry with cavatica_columns")
        handle_out, table = tempfile.mkstemp(prefix="gensvc-cavatica-", suffix=".tsv")
        atexit.register(lambda: os.path.exists(table) and os.unlink(table))
        with os.fdopen(handle_out, "w") as out:
            kinds = "\t".join(f"{c}|{declared[c][1]}|{declared[c][2]}" for c in carried)
            out.write(f"{TABLE_MARK}\t{kinds}\n")
            out.write("\t".join(["chrom", "pos", "ref", "alt", *carried]) + "\n")
            for line in handle:
                parts = line.rstrip("\r\n").split("\t")
                if len(parts) < 8:
                    continue
                info, alts = _info_values(parts[7]), parts[4].split(",")
                per_alt = []
                for column in carried:
                    value = info.get(column, "")
                    split = value.split(",") if declared[column][0] == "A" else None
                    per_alt.append(split if split is not None and len(split) == len(alts) else [value] * len(alts))
                for n, alt in enumerate(alts):
                    cells = ["" if v[n] == "." else v[n] for v in per_alt]
                    out.write("\t".join([parts[0], parts[1], parts[3], alt, *cells]) + "\n")
    return table


class CavaticaSource(Source):
    name = "cavatica"

    def _read_header(self, columns) -> None:
        with open_text(self.path) as handle:
            first = handle.readline()
        self.vcf_name = os.path.basename(self.path)
        if first.startswith("##fileformat=VCF"):
            self.path = alleles_table(self.path, columns, self.refuse)
            with open_text(self.path) as handle:
                first = handle.readline()
        if not first.startswith(TABLE_MARK):
            self.refuse("is not a VCF", hint="give the output VCF of cavatica download")
        kinds = [item.split("|", 2) for item in first.rstrip("\n").split("\t")[1:]]
        header = ["chrom", "pos", "ref", "alt", *(column for column, _, _ in kinds)]
        self.header_lines = 2
        self._set_columns(header, header[4:], [0, 1, 2, 3])
        for column, kind, description in kinds:
            info_id = column if column.startswith("CAV_") else f"CAV_{column}"
            self.fields.append(Field(info_id, kind if kind in ("Integer", "Float", "String") else "String",
                                     self.describe(f"CAVATICA {description}"), column))

    def describe(self, what: str) -> str:
        return super().describe(what).replace(os.path.basename(self.path), self.vcf_name)

    def header_record(self, counts: dict) -> str:
        return super().header_record(counts).replace(os.path.basename(self.path), self.vcf_name)

    def service_text(self) -> str:
        versions = self.versions()
        text = "CAVATICA"
        if versions.get("cavatica_app"):
            text += f" app {versions['cavatica_app']}"
        return text

    def input_key(self, chrom, pos, ref, alt):
        return f"{chrom}\t{pos}\t{ref}\t{alt}"  # the app writes the input's records back as they were

    def chrom_prefix(self, chrom: str) -> str:
        return f"{chrom}\t"
