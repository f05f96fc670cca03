"""Report plots and the provenance table, from the services' own outputs.

Every plot has a title that names what it shows, and one panel per sample (headed by the
sample's name and count) up to MAX_PANELS samples; beyond that the samples are pooled and the
title lists them. SVG text stays text, so titles can be searched and read by tools.
"""

import csv
import html
import json
import math
import sys
import textwrap
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["svg.fonttype"] = "none"  # keep text as text, not glyph paths
matplotlib.rcParams["svg.hashsalt"] = "gensvc"  # the same data give the same bytes
import matplotlib.pyplot as plt  # noqa: E402

MAX_PANELS = 6


def rows(path):
    with open(path, newline="") as handle:
        lines = [line for line in handle if not line.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t"))


def panels(samples, tables):
    """(label, table paths) per panel: one per sample, or one pooling all of them."""
    if len(samples) <= MAX_PANELS:
        return [(sample, [table]) for sample, table in zip(samples, tables)], "per sample"
    shown = ", ".join(samples[:8]) + (", ..." if len(samples) > 8 else "")
    return [(f"all {len(samples)} samples", list(tables))], f"pooled over {len(samples)} samples: {shown}"


def save(figure, path, title):
    figure.suptitle(textwrap.fill(title, 80))
    figure.savefig(path, metadata={"Title": title, "Date": None})
    plt.close(figure)


def empty_plot(path, title, message):
    figure, axes = plt.subplots(figsize=(7, 2), layout="constrained")
    axes.axis("off")
    axes.text(0.5, 0.5, message, ha="center", va="center")
    save(figure, path, title)


def bravo_plot(samples, tables, path):
    title_of = "TOPMed allele frequency (Bravo) of the variants, by FILTER, {}"
    if not tables:
        return empty_plot(path, title_of.format("per sample"), "Bravo is turned off in the config")
    groups, how = panels(samples, tables)
    figure, axes = plt.subplots(len(groups), 1, figsize=(8, 2.4 * len(groups) + 0.8), sharex=True,
                                squeeze=False, layout="constrained")
    filters = sorted({row["filter"] for table in tables for row in rows(table) if row["found"] == "true"})
    read = [(label, [row for table in group for row in rows(table)]) for label, group in groups]
    values = [math.log10(float(r["allele_freq"])) for _, found in read for r in found
              if r["found"] == "true" and float(r["allele_freq"]) > 0]
    low, high = (min(values), max(values)) if values else (-6, 0)
    bins = [low + (high - low) * i / 20 for i in range(21)] if high > low else 20  # the same in every panel
    for (label, found), ax in zip(read, axes[:, 0]):
        known = [row for row in found if row["found"] == "true" and float(row["allele_freq"]) > 0]
        by_filter = {name: [math.log10(float(r["allele_freq"])) for r in known if r["filter"] == name] for name in filters}
        if known:  # every panel stacks every FILTER in the same order: one colour each
            ax.hist(list(by_filter.values()), bins=bins, stacked=True, label=filters)
        ax.set_title(f"{label} ({len(known)} of {len(found)} ALTs known to Bravo)", fontsize="medium")
        ax.set_ylabel("variants")
    axes[-1, 0].set_xlabel("log10 allele frequency (TOPMed, Bravo)")
    handles, labels = next((ax.get_legend_handles_labels() for ax in axes[:, 0] if ax.patches), ([], []))
    if handles:
        figure.legend(handles, labels, title="FILTER", fontsize="small", loc="outside right center")
    save(figure, path, title_of.format(how))


def bar_plot(samples, tables, column, path, title_of, xlabel, unit, off_message):
    if not tables:
        return empty_plot(path, title_of.format("per sample"), off_message)
    groups, how = panels(samples, tables)
    counts = [(label, Counter(row.get(column) or "unknown" for table in group for row in rows(table))) for label, group in groups]
    categories = [name for name, _ in sum((c for _, c in counts), Counter()).most_common()]
    figure, axes = plt.subplots(1, len(groups), figsize=(max(7, 3.2 * len(groups) + 2.8), 0.35 * len(categories) + 1.8),
                                sharey=True, squeeze=False, layout="constrained")
    for (label, count), ax in zip(counts, axes[0]):
        ax.barh(categories, [count.get(name, 0) for name in categories])
        ax.set_title(f"{label} ({sum(count.values())} {unit})", fontsize="medium")
        ax.set_xlabel(xlabel)
    axes[0, 0].invert_yaxis()
    save(figure, path, title_of.format(how))


# rows of the provenance table: the records gensvc writes beside each output
COLUMNS = ["sample", "service", "operation", "output", "file", "job", "URL", "versions", "requests",
           "started", "seconds"]


def provenance_table(products, path):
    lines = ["<table>", "<tr>" + "".join(f"<th>{name}</th>" for name in COLUMNS) + "</tr>"]
    for sample, files in products.items():
        for output in files:
            sidecar = Path(f"{output}.prov.json")
            if not sidecar.exists():
                continue
            record = json.loads(sidecar.read_text())
            details = record.get("details") or {}
            cells = [sample, record.get("service"), record.get("operation"), record.get("output"), output,
                     details.get("job_id", ""), record.get("url") or "", json.dumps(record.get("versions") or {}),
                     record.get("requests"), record.get("started"), record.get("seconds")]
            lines.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    lines.append("</table>")
    Path(path).write_text("\n".join(lines) + "\n")


def main(inputs, outputs, params):
    samples = list(params.samples)
    bravo_plot(samples, inputs.bravo, outputs.bravo)
    bar_plot(samples, inputs.opencravat, "so", outputs.opencravat,
             "Consequences OpenCRAVAT assigned to the variants, {}", "variants", "variants",
             "OpenCRAVAT is turned off in the config")
    bar_plot(samples, inputs.cgi, "CGI-Oncogenic Summary", outputs.cgi,
             "CGI oncogenic summary of the alterations, {}", "alterations", "alterations",
             "CGI is turned off in the config")
    provenance_table(params.products, outputs.provenance)


if "snakemake" in globals():
    with open(snakemake.log[0], "w") as log:  # noqa: F821
        sys.stderr = log
        main(snakemake.input, snakemake.output, snakemake.params)  # noqa: F821
