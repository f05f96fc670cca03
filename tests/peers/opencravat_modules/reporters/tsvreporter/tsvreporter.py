"""Tab-separated report (gensvc test stub); layout in tablereport.py."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tablereport import TableReporter  # noqa: E402


class Reporter(TableReporter):
    delimiter = "\t"
    extension = ".tsv"
