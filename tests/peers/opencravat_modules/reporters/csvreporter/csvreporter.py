"""Comma-separated report (gensvc test stub); layout in ../tsvreporter/tablereport.py."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tsvreporter"))
from tablereport import TableReporter  # noqa: E402


class Reporter(TableReporter):
    delimiter = ","
    extension = ".csv"
