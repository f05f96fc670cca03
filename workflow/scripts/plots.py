"""Report plots and the provenance table, from the services' own outputs."""

import csv
import html
import json
import math
import sys
from collections import Counter, defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def rows(path):
    with open(path, newline="") as handle:
        lines = [line for line in handle if not line.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t"))


def empty_plot(path, message):
    figure, axes = plt.subplots(figsize=(6, 2))
    axes.axis("off")
    axes.text(0.5, 0.5, message, ha="center", va="center")
    figure.savefig(path)
    plt.close(figure)


def bravo_plot(tables, path):
    by_filter = defaultdict(list)
    for table in tables:
        for row in rows(table):
            if row["found"] == "true" and float(row["allele_freq"]) > 0:
                by_filter[row["filter"]].append(math.log10(float(row["allele_freq"])))
    if not by_filter:
        return empty_plot(path, "Bravo disabled or no variant found")
    figure, axes = plt.subplots(figsize=(7, 4))
    axes.hist(list(by_filter.values()), bins=20, stacked=True, label=list(by_filter))
    axes.set_xlabel("log10 allele frequency (TOPMed, Bravo)")
    axes.set_ylabel("variants")
    axes.legend(title="FILTER", fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def bar_plot(counts, path, xlabel, empty_message):
    if not counts:
        return empty_plot(path, empty_message)
    labels, values = zip(*counts.most_common())
    figure, axes = plt.subplots(figsize=(7, 0.4 * len(labels) + 1.2))
    axes.barh(labels, values)
    axes.invert_yaxis()
    axes.set_xlabel(xlabel)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def provenance_table(paths, path):
    records = []
    for output in paths:
        sidecar = Path(f"{output}.prov.json")
        if sidecar.exists():
            records.append(json.loads(sidecar.read_text()))
    for sidecar in sorted(Path("results").rglob("*.receipt.json.prov.json")):
        records.append(json.loads(sidecar.read_text()))
    lines = ["<table><tr><th>service</th><th>operation</th><th>URL</th><th>job</th><th>versions</th>"
             "<th>requests</th><th>started</th><th>seconds</th><th>output</th></tr>"]
    for record in records:
        details = record.get("details") or {}
        cells = [record.get("service"), record.get("operation"), record.get("url") or "", details.get("job_id", ""),
                 json.dumps(record.get("versions") or {}), record.get("requests"), record.get("started"),
                 record.get("seconds"), record.get("output")]
        lines.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    lines.append("</table>")
    Path(path).write_text("\n".join(lines) + "\n")


def main(inputs, outputs):
    bravo_plot(inputs.bravo, outputs.bravo)
    consequences = Counter(row.get("so") or "unknown" for t in inputs.opencravat for row in rows(t))
    bar_plot(consequences, outputs.opencravat, "variants (OpenCRAVAT consequence)", "OpenCRAVAT disabled")
    summaries = Counter(row.get("CGI-Oncogenic Summary") or "unknown" for t in inputs.cgi for row in rows(t))
    bar_plot(summaries, outputs.cgi, "alterations (CGI oncogenic summary)", "CGI disabled")
    sources = [*inputs.bravo, *inputs.opencravat, *inputs.cgi, *inputs.annotated]
    provenance_table(sources, outputs.provenance)


if "snakemake" in globals():
    with open(snakemake.log[0], "w") as log:  # noqa: F821
        sys.stderr = log
        main(snakemake.input, snakemake.output)  # noqa: F821
