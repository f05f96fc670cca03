"""The reference workflow end to end against the emulators, checked against their ground truth."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import pysam
import pytest
import requests
import yaml

from helpers import REPO, read_tsv
from emulators.test_shared_gene_model import SAME_CONSEQUENCE
from gensvc.alleles import minimal
from gensvc.emulators import bravo_data
from gensvc.emulators.opencravat_annotators import annotate
from gensvc.emulators.opencravat_mapper import map_variant
from gensvc.emulators.server import start_emulator
from gensvc.merge import unescape
from gensvc.services.cgi import input_key, parse_alterations
from gensvc.services.opencravat import oc_allele

pytestmark = pytest.mark.slow

SECRETS = {"GENSVC_BRAVO_TOKEN": "bravo-demo-token", "GENSVC_CGI_EMAIL": "wf@example.org", "GENSVC_CGI_TOKEN": "cgi-demo-token",
           "GENSVC_OPENCGA_USER": "demouser", "GENSVC_OPENCGA_PASSWORD": "demouser",
           "GENSVC_CAVATICA_TOKEN": "cavatica-demo-token"}
EMULATED = {"bravo": {}, "opencravat": {"time_scale": 0.5}, "cgi": {"time_scale": 0.05}, "opencga": {"time_scale": 0.02},
            "cavatica": {"time_scale": 0.02}}
OPENCGA_RULES = {"opencga_upload": 1, "opencga_index": 1, "opencga_poll": 1, "opencga_query": 1, "opencga_check": 1}


class Workflow:
    """A working directory with the demo config, and the emulators it talks to."""

    def __init__(self, workdir: Path, emulators: dict, services: dict | None = None):
        self.workdir = workdir
        self.emulators = emulators
        config = yaml.safe_load((REPO / ".test" / "config.yaml").read_text())
        shutil.copytree(REPO / ".test" / "data", workdir / ".test" / "data")
        for name, changes in (services or {}).items():
            config["services"][name].update(changes)
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
        clean = {k: v for k, v in os.environ.items() if not k.startswith("GENSVC_")}
        self.env = {**clean, **SECRETS, "HOME": str(workdir), "GENSVC_STATE_DIR": str(workdir / ".gensvc")}
        for service, emulator in emulators.items():
            self.env[f"GENSVC_{service.upper()}_URL"] = emulator.url

    def command(self, *extra) -> list[str]:
        return [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile"),
                "--configfile", str(self.workdir / "config.yaml"), "--directory", str(self.workdir),
                "--cores", "2", "--resources", "bravo_api=1", "opencravat_api=1", "cgi_api=1", "cavatica_api=1", *extra]

    def run(self, *extra, timeout=600) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*extra), env=self.env, capture_output=True, text=True, timeout=timeout)

    def planned(self) -> dict[str, int]:
        """Jobs a dry run would run, by rule."""
        done = self.run("-n", "--quiet", "rules")
        assert done.returncode == 0, done.stderr
        counts = {}
        for line in (done.stdout + done.stderr).splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit() and parts[0] not in ("total", "job"):
                counts[parts[0]] = int(parts[1])
        return counts


@pytest.fixture(scope="module")
def emulators():
    with ExitStack() as stack:
        yield {s: stack.enter_context(start_emulator(s, **settings)) for s, settings in EMULATED.items()}


@pytest.fixture(scope="module")
def finished(tmp_path_factory, emulators) -> Workflow:
    workflow = Workflow(tmp_path_factory.mktemp("workflow"), emulators)
    done = workflow.run()
    assert done.returncode == 0, done.stderr[-4000:]
    return workflow


def read_report(path: Path) -> list[dict]:
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:]]


def input_alts(vcf: Path):
    with pysam.VariantFile(str(vcf)) as records:
        for record in records:
            for alt in record.alts:
                yield record, alt


def annotated(workflow: Workflow, sample: str) -> dict:
    """INFO of the merged VCF, per (chrom, pos, ref, alt) of the input, ALT-indexed fields picked."""
    found = {}
    with pysam.VariantFile(str(workflow.workdir / "results" / f"{sample}.annotated.vcf.gz")) as vcf:
        numbers = {key: vcf.header.info[key].number for key in vcf.header.info}
        for record in vcf:
            for index, alt in enumerate(record.alts):
                info = {}
                for key, value in record.info.items():
                    value = value[index] if numbers.get(key) == "A" else value
                    info[key] = unescape(value) if isinstance(value, str) else value
                found[(record.chrom, record.pos, record.ref, alt)] = info
    return found


def test_results_and_report_exist(finished):
    results = finished.workdir / "results"
    for sample in ("tumour", "normal"):
        for suffix in ("annotated.vcf.gz", "annotated.vcf.gz.tbi", "annotated.tsv"):
            assert (results / f"{sample}.{suffix}").stat().st_size > 0
    for plot in ("bravo_af_by_filter.svg", "opencravat_consequences.svg", "cgi_oncogenic_summary.svg"):
        assert (results / "report" / plot).read_text().lstrip().startswith(("<?xml", "<svg"))
    provenance = (results / "report" / "provenance.html").read_text()
    assert "opencravat" in provenance and "cgi" in provenance and "bravo" in provenance
    report = finished.run("--report", str(results / "report.html"))
    assert report.returncode == 0, report.stderr[-3000:]
    assert (results / "report.html").stat().st_size > 10_000


def svg_texts(path: Path) -> tuple[str, list[str]]:
    """An SVG's title (its metadata) and every text drawn in it."""
    import xml.etree.ElementTree as ET

    tree = ET.parse(path)
    work = next(e for e in tree.iter() if e.tag.endswith("}Work"))  # the figure's own metadata
    title = "".join(e.text or "" for e in work if e.tag.endswith("}title"))
    texts = ["".join(e.itertext()).strip() for e in tree.iter() if e.tag.endswith("}text")]
    return title, [t for t in texts if t]


def test_every_plot_has_a_title_and_a_panel_per_sample(finished):
    plots = finished.workdir / "results" / "report"
    wanted = {"bravo_af_by_filter.svg": "allele frequency", "opencravat_consequences.svg": "OpenCRAVAT",
              "cgi_oncogenic_summary.svg": "CGI"}
    for name, topic in wanted.items():
        title, texts = svg_texts(plots / name)
        assert topic in title and "per sample" in title, (name, title)
        assert title in texts, name  # drawn on the figure too, not only in the metadata
        for sample in ("tumour", "normal"):  # one panel per sample, headed by its name
            assert any(t.startswith(sample + " (") for t in texts), (name, sample, texts)


def test_a_plot_of_many_samples_pools_them_and_its_title_lists_them(finished, tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("plots", REPO / "workflow" / "scripts" / "plots.py")
    plots = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plots)
    samples = [f"s{n}" for n in range(plots.MAX_PANELS + 1)]
    tables = [finished.workdir / "results" / "cgi" / "tumour.alterations.tsv"] * len(samples)
    plots.bar_plot(samples, tables, "CGI-Oncogenic Summary", tmp_path / "cgi.svg", "CGI summary, {}", "alterations",
                   "alterations", "CGI is off")
    title, texts = svg_texts(tmp_path / "cgi.svg")
    assert title == f"CGI summary, pooled over {len(samples)} samples: " + ", ".join(samples)
    assert any(t.startswith(f"all {len(samples)} samples (") for t in texts)


def provenance_rows(path: Path) -> tuple[list[str], list[dict]]:
    import html.parser

    class Cells(html.parser.HTMLParser):
        def __init__(self):
            super().__init__()
            self.rows, self.cell = [], None

        def handle_starttag(self, tag, attrs):
            if tag == "tr":
                self.rows.append([])
            elif tag in ("td", "th"):
                self.cell = ""

        def handle_data(self, data):
            if self.cell is not None:
                self.cell += data

        def handle_endtag(self, tag):
            if tag in ("td", "th"):
                self.rows[-1].append(self.cell)
                self.cell = None

    cells = Cells()
    cells.feed(path.read_text())
    header, *body = cells.rows
    return header, [dict(zip(header, row)) for row in body]


def test_the_provenance_table_names_the_sample_and_the_file_of_every_output(finished):
    header, rows = provenance_rows(finished.workdir / "results" / "report" / "provenance.html")
    assert header[:5] == ["sample", "service", "operation", "output", "file"]
    for sample in ("tumour", "normal"):
        files = {row["file"] for row in rows if row["sample"] == sample}
        for made in (f"results/bravo/{sample}.bravo.tsv", f"results/opencravat/{sample}.receipt.json",
                     f"results/opencravat/{sample}.variant.tsv", f"results/cgi/{sample}.receipt.json",
                     f"results/cgi/{sample}.status.json", f"results/cgi/{sample}.alterations.tsv",
                     f"results/{sample}.annotated.vcf.gz", f"results/{sample}.annotated.tsv"):
            assert made in files, (sample, made)
    by_file = {row["file"]: row for row in rows}
    assert by_file["results/cgi/tumour.alterations.tsv"]["output"] == "alterations"
    assert by_file["results/cgi/tumour.alterations.tsv"]["operation"] == "download"
    assert by_file["results/opencravat/normal.receipt.json"]["job"] != ""
    assert {row["sample"] for row in rows} == {"tumour", "normal"}


def test_every_variant_carries_the_emulators_truth(finished):
    for sample in ("tumour", "normal"):
        vcf = finished.workdir / ".test" / "data" / f"{sample}.vcf"
        merged = annotated(finished, sample)
        cgi_rows = {row["key"]: row for row in parse_alterations(finished.workdir / "results" / "cgi" / f"{sample}.alterations.tsv")}
        checked = {"bravo": 0, "opencravat": 0, "cgi": 0}
        report = finished.workdir / "results" / "opencravat" / f"{sample}.variant.tsv"
        reported = {(r["chrom"], r["pos"], r["ref_base"], r["alt_base"]) for r in read_report(report)}
        for record, alt in input_alts(vcf):
            info = merged[(record.chrom, record.pos, record.ref, alt)]
            bare = record.chrom.removeprefix("chr")
            # Bravo's record for this ALT, however either side spells it
            truth = {minimal(v["pos"], v["ref"], v["alt"]): v for v in bravo_data.variants_in(bare, record.pos, record.pos)}
            known = truth.get(minimal(record.pos, record.ref, alt))
            if known:
                assert info["BRAVO_AF"] == pytest.approx(known["allele_freq"])
                assert info["BRAVO_FILTER"] == known["filter"]
                checked["bravo"] += 1
            else:
                assert info.get("BRAVO_AF") in (None, ".")
            chrom, pos, ref, alt_base = oc_allele(record.chrom, record.pos, record.ref, alt)
            if (chrom, str(pos), ref, alt_base) not in reported:
                # OpenCRAVAT leaves out an ALT that no sample carries (a 1/2 call at a 3-ALT site)
                assert info.get("OC_base__hugo") in (None, ".")
                continue
            mapped = map_variant(chrom, pos, ref, alt_base)
            assert info["OC_base__hugo"] == mapped["hugo"] and info["OC_base__so"] == mapped["so"]
            clinvar = annotate("clinvar", {**mapped, "chrom": chrom, "pos": pos,
                                                           "ref_base": ref, "alt_base": alt_base})
            if clinvar and clinvar.get("sig"):
                assert info["OC_clinvar__sig"] == clinvar["sig"]
            checked["opencravat"] += 1
            row = cgi_rows[input_key(record.chrom, record.pos, record.ref, alt)]
            assert info["CGI_GENE"] == row["CGI-Gene"]
            checked["cgi"] += 1
            # one story: both services name the same gene and agree on the consequence
            assert info["CGI_GENE"] == info["OC_base__hugo"], (sample, record.chrom, record.pos, alt)
            assert info["CGI_CONSEQUENCE"] == SAME_CONSEQUENCE[info["OC_base__so"]], (sample, record.pos, alt)
        assert checked["bravo"] > 20 and checked["opencravat"] > 20 and checked["cgi"] > 20


def test_records_keep_order_and_their_own_info(finished):
    for sample in ("tumour", "normal"):
        source = [(r.chrom, r.pos, r.ref, r.alts, r.info["DP"]) for r in pysam.VariantFile(str(finished.workdir / ".test" / "data" / f"{sample}.vcf"))]
        merged = [(r.chrom, r.pos, r.ref, r.alts, r.info["DP"]) for r in pysam.VariantFile(str(finished.workdir / "results" / f"{sample}.annotated.vcf.gz"))]
        assert merged == source
        rows = read_tsv(finished.workdir / "results" / f"{sample}.annotated.tsv")
        assert len(rows) == sum(len(s[3]) for s in source)


def test_bravo_is_asked_once_for_all_samples_of_a_run_and_each_sample_gets_its_own_table(finished, tmp_path, emulators):
    planned = Workflow(tmp_path, emulators).planned()
    assert planned["bravo_frequencies_run"] == 1 and planned["bravo_frequencies"] == 2
    records = {s: json.loads((finished.workdir / "results" / "bravo" / f"{s}.bravo.tsv.prov.json").read_text())
               for s in ("tumour", "normal")}
    assert records["tumour"]["started"] == records["normal"]["started"]  # one call made both
    inputs = [entry["vcf"] for entry in records["tumour"]["details"]["per_input"]]
    assert inputs == [".test/data/normal.vcf", ".test/data/tumour.vcf"]
    for sample in ("tumour", "normal"):
        rows = read_tsv(finished.workdir / "results" / "bravo" / f"{sample}.bravo.tsv")
        assert len(rows) == sum(1 for _ in input_alts(finished.workdir / ".test" / "data" / f"{sample}.vcf"))


def test_deleting_one_intermediate_reruns_only_what_depends_on_it(finished):
    assert finished.planned() == {}
    (finished.workdir / "results" / "bravo" / "tumour.bravo.tsv").unlink()
    assert finished.planned() == {"bravo_frequencies": 1, "merge_annotations": 1, "report_plots": 1, "all": 1,
                                  **OPENCGA_RULES}


def test_the_opencga_branch_finds_every_alt_and_records_its_job_and_version(finished):
    for sample in ("tumour", "normal"):
        check = json.loads((finished.workdir / "results" / "opencga" / f"{sample}.check.json").read_text())
        alts = sum(1 for _ in input_alts(finished.workdir / "results" / f"{sample}.annotated.vcf.gz"))
        assert check["equal"] is True and check["opencga_variants"] == check["vcf_alts"] == alts
        assert check["job_status"] == "DONE" and check["opencga_version"].startswith("5.")
        prov = json.loads((finished.workdir / "results" / "opencga" / f"{sample}.receipt.json.prov.json").read_text())
        assert prov["details"]["job_id"] == check["job_id"] and prov["versions"]["opencga"] == check["opencga_version"]


def test_the_opencga_branch_is_off_unless_the_config_turns_it_on(tmp_path, emulators):
    config = yaml.safe_load((REPO / ".test" / "config.yaml").read_text())
    del config["services"]["opencga"]
    workflow = Workflow(tmp_path, emulators)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    planned = workflow.planned()
    assert planned and not any(rule.startswith("opencga_") for rule in planned)


def test_the_cavatica_branch_merges_the_apps_scores_per_alt_with_its_task_and_app_revision(finished):
    from gensvc.emulators.cavatica_apps import variant_score

    for sample in ("tumour", "normal"):
        merged = finished.workdir / "results" / f"{sample}.annotated.vcf.gz"
        with pysam.VariantFile(str(merged)) as vcf:
            [source] = [r for r in vcf.header.records if r.key == "gensvcSource" and r.get("ID") == "cavatica"]
            scored = 0
            for record in vcf:
                for index, alt in enumerate(record.alts):
                    assert record.info["CAV_SCORE"][index] == pytest.approx(
                        variant_score(record.chrom, str(record.pos), record.ref, alt)), (sample, record.pos, alt)
                    scored += 1
        receipt = json.loads((finished.workdir / "results" / "cavatica" / f"{sample}.receipt.json").read_text())
        assert scored > 20 and source["JobID"].strip('"') == receipt["job_id"]
        assert "gensvc-demo/apps/vcf-score/1" in source["Versions"]


def test_the_cavatica_branch_is_off_unless_the_config_turns_it_on(tmp_path, emulators):
    config = yaml.safe_load((REPO / ".test" / "config.yaml").read_text())
    del config["services"]["cavatica"]
    workflow = Workflow(tmp_path, emulators)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    planned = workflow.planned()
    assert planned and not any(rule.startswith("cavatica_") for rule in planned)
    on = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["services"]["cavatica"]["enabled"]
    assert on is False


def test_killed_while_polling_then_rerun_submits_nothing_twice(tmp_path, emulators):
    with start_emulator("cgi", time_scale=0.3) as slow_cgi:  # 18 s jobs: time to kill the run mid-poll
        workflow = Workflow(tmp_path, {**emulators, "cgi": slow_cgi}, services={"bravo": {"enabled": False}})
        run = subprocess.Popen(workflow.command(), env=workflow.env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
        receipts = [tmp_path / "results" / "cgi" / f"{s}.receipt.json" for s in ("tumour", "normal")]
        deadline = time.monotonic() + 120
        while not all(r.exists() for r in receipts) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)  # polling now
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
        auth = {"Authorization": f"{SECRETS['GENSVC_CGI_EMAIL']} {SECRETS['GENSVC_CGI_TOKEN']}"}
        before = requests.get(slow_cgi.url, headers=auth, timeout=5).json()
        assert len(before) == 2
        assert workflow.run("--unlock").returncode == 0  # a killed run leaves its lock, as after a power loss
        done = workflow.run("--rerun-incomplete")
        assert done.returncode == 0, done.stderr[-4000:]
        assert requests.get(slow_cgi.url, headers=auth, timeout=5).json() == before


def test_a_service_turned_off_has_no_rules_and_no_columns(tmp_path, emulators):
    workflow = Workflow(tmp_path, emulators, services={"cgi": {"enabled": False}, "opencravat": {"enabled": False}})
    planned = workflow.planned()
    assert not any(rule.startswith(("cgi_", "opencravat_")) for rule in planned)
    done = workflow.run()
    assert done.returncode == 0, done.stderr[-4000:]
    header = pysam.VariantFile(str(tmp_path / "results" / "tumour.annotated.vcf.gz")).header
    assert any(key.startswith("BRAVO_") for key in header.info)
    assert not any(key.startswith(("CGI_", "OC_")) for key in header.info)
    columns = read_tsv(tmp_path / "results" / "tumour.annotated.tsv")[0]
    assert not any(c.startswith(("CGI_", "OC_")) for c in columns)


def test_lint_and_format_are_clean():
    lint = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile"),
                           "--configfile", str(REPO / ".test" / "config.yaml"), "--lint"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert lint.returncode == 0 and "Congratulations" in lint.stdout + lint.stderr, lint.stdout + lint.stderr
    fmt = subprocess.run([sys.executable, "-m", "snakefmt", "--check", str(REPO / "workflow")], capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stderr
