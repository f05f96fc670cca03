"""VCF report (gensvc test stub), shaped like OpenCRAVAT's vcfreporter 3.3.0 'separate' mode.

  ##fileformat=VCFv4.2
  ##OpenCRAVATFileDate=YYYYMMDD
  <the input's own ## lines, except ##fileformat>
  ##INFO=<ID=OC_<module>__<column>,Number=A,Type=String|Integer|Float,Description="...">
  #CHROM POS ID REF ALT QUAL FILTER INFO [FORMAT samples...]
  <each input line, once all its ALT alleles are annotated, with INFO extended by
   OC_<module>__<column>=<value per ALT, ','-joined, '.' where an ALT has none>>
Columns left out: uid, chrom, pos, ref_base, alt_base, numsample, samples, tags and the
vcfinfo/tagsampler/extra_vcf_info groups. Values are percent-encoded (% : ; = , tab CR LF);
all_mappings has its spaces turned into '-'. Non-VCF input gets synthetic lines
(chrom without 'chr', pos, uid as ID, ref, alt, '.', '.', INFO).
"""
import datetime
import sqlite3

from cravat.cravat_report import CravatReport

SKIP = {"base__uid", "base__chrom", "base__pos", "base__ref_base", "base__alt_base",
        "base__numsample", "base__samples", "base__tags"}
SKIP_GROUPS = ("extra_vcf_info__", "vcfinfo__", "tagsampler__")
ENCODE = [("%", "%25"), (":", "%3A"), (";", "%3B"), ("=", "%3D"), (",", "%2C"),
          ("\n", "%0A"), ("\t", "%09"), ("\r", "%0D")]
TYPES = {"int": "Integer", "float": "Float", "string": "String"}


def encode(value):
    for plain, coded in ENCODE:
        value = value.replace(plain, coded)
    return value


def usable_alt(alt):
    return alt != "*" and not alt.startswith("<")


class Reporter(CravatReport):
    def setup(self):
        self.wf = None
        self.levels_to_write = ["variant"]
        prefix = self.savepath if self.savepath is not None else "cravat_result"
        self.filename = prefix + ".vcf"
        self.db = sqlite3.connect(self.dbpath)
        row = self.db.execute('select colval from info where colkey="_converter_format"').fetchone()
        self.input_format = row[0] if row else ""
        self.inputs = list(self.args.inputfiles or [])

    def write_preface(self, level):
        self.level = level
        if level != "variant":
            return
        self.wf = open(self.filename, "w", encoding="utf-8", newline="")
        self.wf.write("##fileformat=VCFv4.2\n")
        self.wf.write("##OpenCRAVATFileDate=%s\n" % datetime.datetime.now().strftime("%Y%m%d"))
        self.lines = {}
        self.pending = {}
        self.samples = []
        if self.input_format == "vcf":
            seen = set()
            for fileno, path in enumerate(self.inputs):
                self.lines[fileno] = {}
                with open(path, encoding="utf-8") as f:
                    for lineno, line in enumerate(f, start=1):
                        line = line.rstrip("\r\n")
                        if line.startswith("##fileformat="):
                            continue
                        if line.startswith("##"):
                            if line not in seen:
                                self.wf.write(line + "\n")
                                seen.add(line)
                        elif line.startswith("#CHROM"):
                            self.samples.extend(line.split("\t")[9:])
                        elif line:
                            self.lines[fileno][lineno] = line

    def write_header(self, level):
        if level != "variant":
            return
        self.columns = []
        for col in self.get_extracted_header_columns(level):
            name = col["col_name"]
            if name in SKIP or name.startswith(SKIP_GROUPS) or name.endswith("__original_line"):
                continue
            self.columns.append(name)
            self.wf.write('##INFO=<ID=OC_%s,Number=A,Type=%s,Description="%s">\n' % (
                name, TYPES.get(col["col_type"], "String"), col.get("col_desc") or ""))
        head = ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"]
        if self.samples:
            head += ["FORMAT"] + self.samples
        self.wf.write("\t".join(head) + "\n")
        self.header_cols = [c["col_name"] for c in self.get_extracted_header_columns(level)]

    def cell(self, name, value):
        if value is None or value == "":
            return ""
        value = str(value)
        if name == "base__all_mappings":
            value = value.replace(" ", "-")
        return encode(value)

    def write_table_row(self, row):
        if self.level != "variant":
            return
        values = dict(zip(self.header_cols, row))
        info = [self.cell(name, values.get(name)) for name in self.columns]
        if self.input_format != "vcf":
            fields = ["".join(values["base__chrom"].split("chr", 1)), str(values["base__pos"]),
                      str(values["base__uid"]), values["base__ref_base"], values["base__alt_base"], ".", ".",
                      self.info_string([[v] for v in info]) or "."]
            self.wf.write("\t".join(fields) + "\n")
            return
        places = self.db.execute("select base__fileno, base__original_line from mapping where base__uid=?",
                                 [values["base__uid"]]).fetchall()
        for fileno, lineno in places:
            line = self.lines.get(fileno, {}).get(lineno)
            if line is None:
                continue
            alts = line.split("\t")[4].split(",")
            done = self.pending.setdefault((fileno, lineno), [])
            done.append(info)
            if len(done) < len([a for a in alts if usable_alt(a)]):
                continue
            per_field = []
            it = iter(done)
            per_alt = [next(it) if usable_alt(a) else None for a in alts]
            for i in range(len(self.columns)):
                per_field.append([(p[i] if p is not None else "") for p in per_alt])
            toks = line.split("\t")
            extra = self.info_string(per_field)
            if extra:
                toks[7] = extra if toks[7] in (".", "") else toks[7] + ";" + extra
            self.wf.write("\t".join(toks) + "\n")
            del self.pending[(fileno, lineno)]

    def info_string(self, per_field):
        parts = []
        for name, vals in zip(self.columns, per_field):
            if any(v != "" for v in vals):
                parts.append("OC_%s=%s" % (name, ",".join(v if v != "" else "." for v in vals)))
        return ";".join(parts)

    def end(self):
        if self.wf is not None:
            self.wf.close()
        self.db.close()
        return self.filename
