"""Plain text report (gensvc test stub): '<run_name>.tsv' holding every level.

This only approximates OpenCRAVAT's textreporter: a '#' preface per level
('#Report level: <level>' and '#Column <n> <module>.<column>=<title>' lines), a header row
of '<module>.<column>' names and the rows, tab-separated.
"""
from cravat.cravat_report import CravatReport


class Reporter(CravatReport):
    def setup(self):
        prefix = self.savepath if self.savepath is not None else "cravat_result"
        self.filename = prefix + ".tsv"
        self.wf = open(self.filename, "w", encoding="utf-8")

    def write_preface(self, level):
        self.level = level
        self.wf.write("#Report level: %s\n" % level)

    def write_header(self, level):
        names = []
        for col in self.get_extracted_header_columns(level):
            module, name = col["col_name"].split("__", 1)
            dotted = "%s.%s" % (module, name)
            self.wf.write("#Column %d %s=%s\n" % (len(names), dotted, col["col_title"]))
            names.append(dotted)
        self.wf.write("\t".join(names) + "\n")

    def write_table_row(self, row):
        self.wf.write("\t".join("" if v is None else str(v) for v in row) + "\n")

    def end(self):
        self.wf.close()
        return self.filename
