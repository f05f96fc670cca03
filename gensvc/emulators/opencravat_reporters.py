"""The OpenCRAVAT emulator's result tables and report files.

Reports follow the store reporters, after the package's own processing (column groups:
base, mapper and tagsampler columns first, the other modules ordered by display name;
all_mappings flattened to sorted 'transcript:hugo:protein:so:achange:cchange' entries):
tsvreporter/csvreporter 2.1.0 (`#` preface lines, one `Column description.` line per
column -- both dropped by 2.2.0 -- then a header row of `name` or `module.name`, one row per
variant, variant level only), textreporter (every level, group line + title line),
vcfreporter 3.x `separate` mode (OC_<module>__<column> INFO keys; for VCF input the input's
own lines come back once all their ALTs are annotated; for other input the reporter's own
misalignment of values and keys is reproduced).
"""

from __future__ import annotations

import csv
import datetime
import io
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from .opencravat_mapper import CANONICAL_CHROMS
from .opencravat_annotators import ANNOTATORS, Column, Module, annotate
from .opencravat_converter import Conversion, VCF_SAMPLE_COLUMNS, Variant


REPORTERS: "OrderedDict[str, Module]" = OrderedDict((m.name, m) for m in [
    Module("csvreporter", "CSV Reporter", "2.1.0", "reporter",
           description="CSV format text file reporter",
           output_filename_schema=("{run_name}.variant.csv",)),
    Module("textreporter", "Text Reporter", "2.1.0", "reporter",
           description="Text format reporter", output_filename_schema=("{run_name}.tsv",)),
    Module("tsvreporter", "TSV Reporter", "2.1.0", "reporter",
           description="Tab-delimited format text file reporter",
           output_filename_schema=("{run_name}.variant.tsv",)),
    Module("vcfreporter", "VCF Reporter", "3.3.0", "reporter",
           description="VCF format text file reporter",
           output_filename_schema=("{run_name}.vcf",)),
])

# websubmit's FileRouter.report_extensions: these types are found by extension alone.
REPORT_EXTENSIONS = {"text": ".tsv", "excel": ".xlsx", "vcf": ".vcf"}
# websubmit.get_valid_report_types() leaves these out of every list it serves.
UNLISTED_REPORT_TYPES = ("text", "pandas", "stdout", "example")


def valid_report_types() -> list[str]:
    return [name[: -len("reporter")] for name in REPORTERS
            if name[: -len("reporter")] not in UNLISTED_REPORT_TYPES]


def report_filename(report_type: str, run_name: str) -> str | None:
    """FileRouter.job_report: the file a report type is served from, None if unknown."""
    if report_type in REPORT_EXTENSIONS:
        return run_name + REPORT_EXTENSIONS[report_type]
    module = REPORTERS.get(report_type + "reporter")
    if module is None:
        return None
    return module.output_filename_schema[0].replace("{run_name}", run_name)


BASE_COLUMNS = (
    Column("uid", "UID", "int"), Column("chrom", "Chrom"), Column("pos", "Position", "int"),
    Column("ref_base", "Ref Base"), Column("alt_base", "Alt Base"),
    Column("note_variant", "Variant Note"), Column("coding", "Coding"), Column("hugo", "Gene"),
    Column("transcript", "Transcript"), Column("so", "Sequence Ontology"),
    Column("exonno", "Exon Number", "int"), Column("cchange", "cDNA change"),
    Column("achange", "Protein Change"), Column("all_mappings", "All Mappings"),
    Column("gposend", "End Position", "int"), Column("numsample", "Sample Count", "int"),
    Column("samples", "Samples"), Column("tags", "Tags"),
)
ORIGINAL_INPUT_COLUMNS = (Column("chrom", "Chrom"), Column("pos", "Pos", "int"),
                          Column("ref_base", "Reference allele"),
                          Column("alt_base", "Alternate allele"))
VCFINFO_COLUMNS = (
    Column("phred", "Phred"), Column("filter", "VCF filter"), Column("zygosity", "Zygosity"),
    Column("alt_reads", "Alternate reads"), Column("tot_reads", "Total reads"),
    Column("af", "Variant AF"), Column("hap_block", "Haplotype block ID", "int"),
    Column("hap_strand", "Haplotype strand ID", "int"),
)
VCFINFO_SINGLE_TYPES = {"phred": "float", "alt_reads": "int", "tot_reads": "int",
                        "af": "float", "hap_block": "int", "hap_strand": "int"}
GENE_SUMMARY_COLUMNS = (Column("num_variants", "Number of Variants", "int"),
                        Column("so", "Sequence Ontology"),
                        Column("all_so", "All Sequence Ontologies"))


@dataclass
class Group:
    name: str
    displayname: str
    columns: list[Column]


@dataclass
class Table:
    level: str
    groups: list[Group]
    rows: list[list[Any]]
    uids: list[int] = field(default_factory=list)

    def columns(self) -> list[tuple[str, Column]]:
        return [(g.name, c) for g in self.groups for c in g.columns]


def _sqlite_value(kind: str, value: Any) -> Any:
    """What a typed sqlite column gives back for a written value."""
    if value is None or value == "":
        return None
    if kind == "int":
        try:
            return int(value)
        except (TypeError, ValueError):
            try:
                return float(value)
            except (TypeError, ValueError):
                return value
    if kind == "float":
        try:
            return float(value)
        except (TypeError, ValueError):
            return value
    return value if isinstance(value, str) else str(value)


def flatten_all_mappings(value: str | None) -> str:
    """cravat_report: the mapper's JSON becomes sorted 'transcript:hugo:protein:so:achange:
    cchange' entries joined by '; ' in every report."""
    entries = []
    for hugo, rows in json.loads(value or "{}").items():
        for protid, protchange, so, transcript, rnachange in rows:
            entries.append(":".join([transcript, hugo, protid if protid is not None else "(na)", so,
                                     protchange if protchange is not None else "(na)",
                                     rnachange if rnachange is not None else "(na)"]))
    return "; ".join(sorted(entries))


def _vcfinfo_values(variant: Variant, multi_sample: bool) -> dict:
    rows = [s.values for s in variant.samples]
    out: dict[str, Any] = {}
    for col in VCFINFO_COLUMNS:
        # crs columns: phred/filter/zygosity strings, reads int, af float, as loaded
        crs_kind = {"alt_reads": "int", "tot_reads": "int", "af": "float",
                    "hap_block": "int", "hap_strand": "int"}.get(col.name, "string")
        values = [_sqlite_value(crs_kind, r.get(col.name)) for r in rows]
        if multi_sample:
            joined = ";".join("" if v is None else str(v) for v in values)
            chars = set(joined)
            out[col.name] = None if not chars or chars == {";"} else joined
        else:
            value = values[0] if values else None
            out[col.name] = _sqlite_value(VCFINFO_SINGLE_TYPES.get(col.name, "string"), value)
    return out


def variant_table(conv: Conversion, annotators: list[str]) -> Table:
    """The variant level as the reporters see it, groups in cravat_report's order."""
    groups = [Group("base", "Variant Annotation", list(BASE_COLUMNS))]
    others: list[Group] = []
    for name in annotators:
        module = ANNOTATORS[name]
        others.append(Group(name, module.title, list(module.columns)))
    others.append(Group("original_input", "Original Input", list(ORIGINAL_INPUT_COLUMNS)))
    is_vcf = conv.format == "vcf"
    if is_vcf:
        extra = [Column("pos", "VCF Position", "int"), Column("ref", "VCF Ref Allele"),
                 Column("alt", "VCF Alt Allele")]
        typemap = {"Integer": "int", "Float": "float"}
        for info in conv.info_fields:
            extra.append(Column(info.id.replace("-", "_"), info.id,
                                typemap.get(info.type, "string"), info.desc))
        others.append(Group("extra_vcf_info", "Extra VCF INFO Annotations", extra))
        multi = len({s.sample_id for v in conv.variants for s in v.samples
                     if s.sample_id is not None}) > 1
        vcfinfo_cols = [Column(c.name, c.title, c.type if multi else
                               VCFINFO_SINGLE_TYPES.get(c.name, c.type), c.desc)
                        for c in VCFINFO_COLUMNS]
        others.append(Group("vcfinfo", "VCF Info", vcfinfo_cols))
    else:
        multi = False
    others.sort(key=lambda g: g.displayname)
    groups.extend(others)
    rows: list[list[Any]] = []
    for v in conv.variants:
        values: dict[str, Any] = {}
        sample_ids = list(OrderedDict.fromkeys(s.sample_id for s in v.samples
                                               if s.sample_id is not None))
        tags = sorted({t for _, _, t in v.mappings if t is not None})
        base = {"uid": v.uid, "chrom": v.chrom, "pos": v.pos, "ref_base": v.ref,
                "alt_base": v.alt, "note_variant": None, **v.mapped,
                "all_mappings": flatten_all_mappings(v.mapped.get("all_mappings")),
                "numsample": len(sample_ids), "samples": ";".join(sample_ids),
                "tags": ";".join(tags)}
        for key, value in base.items():
            values["base__" + key] = value
        input_values = v.as_input()
        for name in annotators:
            # BaseAnnotator skips '*' alleles and non-canonical chromosomes (chrM too) in
            # jobs; the live annotator does not
            skipped = ANNOTATORS[name].level == "variant" and (
                v.chrom not in CANONICAL_CHROMS or v.alt == "*")
            out = {} if skipped else (annotate(name, input_values) or {})
            for col in ANNOTATORS[name].columns:
                values["%s__%s" % (name, col.name)] = out.get(col.name)
        for col, value in zip(ORIGINAL_INPUT_COLUMNS, v.original):
            values["original_input__" + col.name] = value
        if is_vcf:
            for key, value in (v.extra_info or {}).items():
                if key != "uid":
                    values["extra_vcf_info__" + key.replace("-", "_")] = value
            for key, value in _vcfinfo_values(v, multi).items():
                values["vcfinfo__" + key] = value
        row = []
        for group in groups:
            for col in group.columns:
                row.append(_sqlite_value(col.type, values.get("%s__%s" % (group.name, col.name))))
        rows.append(row)
    return Table("variant", groups, rows, [v.uid for v in conv.variants])


def other_tables(conv: Conversion, annotators: list[str]) -> list[Table]:
    """Gene, sample and mapping levels (textreporter writes every level)."""
    genes: "OrderedDict[str, list[Variant]]" = OrderedDict()
    for v in conv.variants:
        hugo = v.mapped.get("hugo")
        if hugo:
            genes.setdefault(hugo, []).append(v)
    gene_groups = [Group("base", "Variant Annotation",
                         [Column("hugo", "Gene"), Column("note_gene", "Gene Note")]
                         + list(GENE_SUMMARY_COLUMNS))]
    gene_modules = [n for n in annotators if ANNOTATORS[n].level == "gene"]
    for name in gene_modules:
        gene_groups.append(Group(name, ANNOTATORS[name].title, list(ANNOTATORS[name].columns)))
    gene_rows = []
    for hugo in genes:  # the mapper's gene list, in order of first appearance
        counts: dict[str, int] = {}
        for v in genes[hugo]:
            so = v.mapped.get("so")
            if so:
                counts[so] = counts.get(so, 0) + 1
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        row = [hugo, None, len(genes[hugo]), ordered[0][0] if ordered else None,
               ",".join("%s(%d)" % kv for kv in ordered)]
        for name in gene_modules:
            out = annotate(name, {"hugo": hugo}) or {}
            row.extend(out.get(c.name) for c in ANNOTATORS[name].columns)
        gene_rows.append(row)
    sample_cols = [Column("uid", "UID", "int"), Column("sample_id", "Sample")]
    if conv.format == "vcf":
        sample_cols += list(VCF_SAMPLE_COLUMNS)
    sample_rows = []
    for uid, sample in conv.sample_rows:  # the sample table, in the order it was loaded
        row = [uid, sample.sample_id]
        if conv.format == "vcf":
            row += [_sqlite_value(c.type, sample.values.get(c.name)) for c in VCF_SAMPLE_COLUMNS]
        sample_rows.append(row)
    mapping_cols = [Column("original_line", "Original Line", "int"), Column("tags", "User Tags"),
                    Column("uid", "UID", "int"), Column("fileno", "Input File Number", "int")]
    mapping_rows = [[line, tag, uid, fileno] for line, fileno, tag, uid in conv.mapping_rows]
    return [Table("gene", gene_groups, gene_rows),
            Table("sample", [Group("base", "Variant Annotation", sample_cols)], sample_rows),
            Table("mapping", [Group("base", "Variant Annotation", mapping_cols)], mapping_rows)]


def _report_time(now: datetime.datetime) -> str:
    return now.strftime("%A %m/%d/%Y %X")


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _display_name(group: str, column: str) -> str:
    return column if group == "base" else "%s.%s" % (group, column)


def render_table_report(table: Table, dbpath: str, now: datetime.datetime,
                        delimiter: str, header_lines: bool = True) -> str:
    """tsvreporter / csvreporter 2.1.0: '#' preface, column descriptions, header row, rows
    (2.2.0, `header_lines=False`, keeps only the header row and the rows)."""
    out = io.StringIO()
    lines = ['title="OpenCRAVAT Report"', "created=" + _report_time(now),
             "level=" + table.level, "datasource=" + dbpath]
    if header_lines:
        for line in lines:
            out.write("#" + line + "\n")
    names = []
    for number, (group, col) in enumerate(table.columns()):
        name = _display_name(group, col.name)
        if header_lines:
            out.write("#Column description. Column %d %s=%s\n" % (number, name, col.title))
        names.append(name)
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(names)
    for row in table.rows:
        writer.writerow([_cell(v) for v in row])
    return out.getvalue()


def render_text_report(tables: list[Table], now: datetime.datetime) -> str:
    """textreporter: per level a '#' preface, a group line, a title line and the rows."""
    out = io.StringIO()
    for table in tables:
        for line in ("CRAVAT Report", "Created at " + _report_time(now),
                     "Report level: " + table.level, ""):
            out.write("#" + line + "\n")
        group_line = ""
        for group in table.groups:
            if group.columns:
                group_line += group.displayname + "\t" * len(group.columns)
        if group_line:
            if group_line.endswith("\t"):  # only the last tab goes, as textreporter does
                group_line = group_line[:-1]
            out.write(group_line + "\n")
            out.write("\t".join(c.title for _, c in table.columns()) + "\n")
        for row in table.rows:
            out.write("\t".join(_cell(v) for v in row) + "\n")
    return out.getvalue()


_PERCENT = [("%", "%25"), (":", "%3A"), (";", "%3B"), ("=", "%3D"), (",", "%2C"),
            ("\n", "%0A"), ("\t", "%09"), ("\r", "%0D")]
_VCF_SKIP = {"base__uid", "base__chrom", "base__pos", "base__ref_base", "base__alt_base",
             "base__numsample", "base__samples", "base__tags"}


def _vcf_encode(value: str) -> str:
    for plain, coded in _PERCENT:
        value = value.replace(plain, coded)
    return value


def _vcf_include(col_name: str) -> bool:
    if col_name in _VCF_SKIP:
        return False
    if col_name.startswith(("extra_vcf_info__", "vcfinfo__", "tagsampler__")):
        return False
    return not col_name.endswith("__original_line")


def _vcf_info_cell(col_name: str, cell: Any) -> str:
    if col_name == "base__all_mappings" and isinstance(cell, str):
        cell = cell.replace(" ", "-")
    if cell is None:
        return ""
    if isinstance(cell, str):
        try:
            parsed = json.loads(cell)
        except json.JSONDecodeError:
            return _vcf_encode(cell)
        if isinstance(parsed, (dict, list)):
            return _vcf_encode(json.dumps(parsed, separators=(",", ":")))
        return _vcf_encode(cell)
    return str(cell)


def render_vcf_report(conv: Conversion, table: Table, now: datetime.datetime) -> str:
    """vcfreporter 3.x, INFO type 'separate'."""
    if conv.format == "vcf" and len(conv.files) > 1:
        return "VCF reporter can handle jobs with only 1 VCF input file\n"
    out = io.StringIO()
    out.write("##fileformat=VCFv4.2\n")
    out.write("##OpenCRAVATFileDate=" + now.strftime("%Y%m%d") + "\n")
    columns = [("%s__%s" % (g, c.name), c) for g, c in table.columns()]
    vcf_lines: dict[int, str] = {}
    samples: list[str] = []
    if conv.format == "vcf":
        written: list[str] = []
        for lineno, line in enumerate(conv.files[0].lines, start=1):
            if line.startswith("##fileformat="):
                continue
            if line.startswith("##"):
                if line not in written:
                    out.write(line if line.endswith("\n") else line + "\n")
                    written.append(line)
            elif line.startswith("#CHROM"):
                toks = line[:-1].split("\t") if line.endswith("\n") else line.split("\t")
                if len(toks) >= 10:
                    samples.extend(toks[9:])
            elif not line.startswith("#"):
                vcf_lines[lineno] = line.rstrip("\n").rstrip("\r")
    else:
        # `select distinct(base__sample_id) from sample` walks the sample_id index: sorted
        distinct = {s.sample_id for v in conv.variants for s in v.samples}
        ordered = ([None] if None in distinct else []) + sorted(x for x in distinct if x is not None)
        samples = ["NOSAMPLEID" if s is None else s for s in ordered] or ["NOSAMPLEID"]
    col_names = []
    for col_name, col in columns:
        if not _vcf_include(col_name):
            continue
        kind = col.type.capitalize()
        kind = "Integer" if kind == "Int" else kind
        out.write('##INFO=<ID=OC_%s,Number=A,Type=%s,Description="%s">\n'
                  % (col_name, kind, col.desc or ""))
        col_names.append(col_name)
    header = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"
    if samples:
        header += "\tFORMAT\t" + "\t".join(samples)
    out.write(header + "\n")
    variants = {v.uid: v for v in conv.variants}
    candidates: dict[int, dict] = {}
    for uid, row in zip(table.uids, table.rows):
        info: list[str] = []
        chrom = pos = ref = alt = None
        sample_cols: list[str] = []
        lineno = None
        for (col_name, _), cell in zip(columns, row):
            if col_name == "base__uid":
                for _, line_no, _ in variants[uid].mappings:
                    lineno = line_no
                    if conv.format == "vcf" and line_no not in candidates and line_no in vcf_lines:
                        alts = vcf_lines[line_no].split("\t")[4].split(",")
                        candidates[line_no] = {
                            "alts": alts, "annots": [],
                            "starless": len([a for a in alts if a not in ("*", "<NON_REF>")])}
                continue
            if conv.format == "vcf" and not _vcf_include(col_name):
                continue
            info.append(_vcf_info_cell(col_name, cell))
            if conv.format != "vcf":
                if col_name == "base__chrom":
                    chrom = cell.lstrip("chr")
                elif col_name == "base__pos":
                    pos = cell
                elif col_name == "base__ref_base":
                    ref = cell
                elif col_name == "base__alt_base":
                    alt = cell
                elif col_name == "base__samples":
                    with_variant = (cell or "").split(",")
                    sample_cols = ["1|1" if s in with_variant else ".|." for s in samples]
        if conv.format == "vcf":
            if lineno not in candidates:
                continue
            candidate = candidates[lineno]
            alts, annots, starless = candidate["alts"], candidate["annots"], candidate["starless"]
        else:
            alts, annots, starless = [alt], [], 1
        annots.append(info)
        if len(annots) != starless:
            continue
        combined = [["." for _ in alts] for _ in range(len(annots[0]))]
        for fieldno in range(len(annots[0])):
            offset = 0
            for altno, alt_text in enumerate(alts):
                if alt_text in ("*", "<NON_REF>"):
                    offset += 1
                else:
                    combined[fieldno][altno] = annots[altno - offset][fieldno]
        parts = []
        for colno, name in enumerate(col_names):
            values = combined[colno]
            if any(v not in ("", '""') for v in values):
                parts.append("OC_%s=%s" % (name, ",".join(values)))
        info_text = ";".join(parts)
        if conv.format == "vcf":
            toks = vcf_lines[lineno].split("\t")
            if len(toks) > 7:
                toks[7] = info_text if toks[7] in (".", "") else toks[7] + ";" + info_text
            del candidates[lineno]
        else:
            toks = [str(chrom), str(pos), str(uid), str(ref), str(alt), ".", ".", info_text,
                    "GT"] + sample_cols
        out.write("\t".join(toks) + "\n")
    return out.getvalue()


def render_report(report_type: str, conv: Conversion, annotators: list[str], dbpath: str,
                  now: datetime.datetime, header_lines: bool = True) -> str | None:
    """The content of one report type, None for a type with no installed reporter."""
    if report_type + "reporter" not in REPORTERS:
        return None
    table = variant_table(conv, annotators)
    if report_type == "tsv":
        return render_table_report(table, dbpath, now, "\t", header_lines)
    if report_type == "csv":
        return render_table_report(table, dbpath, now, ",", header_lines)
    if report_type == "vcf":
        return render_vcf_report(conv, table, now)
    return render_text_report([table] + other_tables(conv, annotators), now)


def errors_text(conv: Conversion) -> str:
    """The job's .err file: one entry per rejected line."""
    return "".join("SOURCE:%-20s \nLINE:%d\nINPUT:%s\nERROR:%s\n#\n"
                   % ("error.converter", lineno, line[:-1], message)
                   for lineno, line, message in conv.errors)
