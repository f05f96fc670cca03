"""Shared writer for the tsv and csv stub reporters (gensvc tests).

Layout (as OpenCRAVAT's tsvreporter/csvreporter 2.2.0 write it): a file per level
'<run_name>.<level>.<ext>' (only 'variant' unless the 'pages' option asks for more), whose
first row holds the column names -- 'base' columns bare (uid, chrom, pos, ...), every other
module's columns as '<module>.<column>' -- followed by one row per variant; empty cells for
missing values; csv-module quoting.
"""
import csv

from cravat.cravat_report import CravatReport


class TableReporter(CravatReport):
    delimiter = "\t"
    extension = ".tsv"

    def setup(self):
        self.wf = None
        self.writer = None
        self.filenames = []
        self.prefix = self.savepath if self.savepath is not None else "cravat_result"
        pages = self.confs.get("pages", "variant")
        self.levels_to_write = pages.split(",") if isinstance(pages, str) else list(pages)

    def write_preface(self, level):
        self.level = level
        if level not in self.levels_to_write:
            return
        if self.wf is not None:
            self.wf.close()
        filename = "%s.%s%s" % (self.prefix, level, self.extension)
        self.filenames.append(filename)
        self.wf = open(filename, "w", encoding="utf-8", newline="")
        self.writer = csv.writer(self.wf, delimiter=self.delimiter, lineterminator="\n")

    def write_header(self, level):
        if level not in self.levels_to_write:
            return
        names = []
        for col in self.colinfo[level]["columns"]:
            if col["col_name"] not in self.colnames_to_display[level]:
                continue
            module, name = col["col_name"].split("__", 1)
            names.append(name if module == "base" else "%s.%s" % (module, name))
        self.writer.writerow(names)

    def write_table_row(self, row):
        if self.level not in self.levels_to_write:
            return
        self.writer.writerow(["" if v is None else str(v) for v in row])

    def end(self):
        if self.wf is not None:
            self.wf.close()
        return self.filenames
