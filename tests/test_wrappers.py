"""Every wrapper runs from Snakemake (wrapper: and script:) and standalone, against the emulator."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO, read_json, read_tsv, run_gensvc, run_snakemake
from test_bravo_operations import frequency_input, write_vcf

WRAPPERS = sorted(p.parent for p in (REPO / "wrappers").glob("*/*/wrapper.py"))
BRAVO_WRAPPERS = [w for w in WRAPPERS if w.parent.name == "bravo"]


def prepare(workdir: Path, wrapper: Path, tmp_path):
    shutil.copy(wrapper / "test" / "Snakefile", workdir / "Snakefile")
    _, records = frequency_input(tmp_path)
    write_vcf(workdir / "sample.vcf", records)


def outputs_of(workdir: Path) -> list[Path]:
    return [p for p in (workdir / "results").iterdir() if not p.name.endswith(".prov.json")]


@pytest.mark.parametrize("wrapper", BRAVO_WRAPPERS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_wrapper_directive_runs_the_example(tmp_path, env, wrapper):
    workdir = tmp_path / "work"
    workdir.mkdir()
    prepare(workdir, wrapper, tmp_path)
    done = run_snakemake(workdir, env)
    assert done.returncode == 0, done.stderr[-3000:]
    [output] = outputs_of(workdir)
    assert output.stat().st_size > 0
    prov = read_json(f"{output}.prov.json")
    assert prov["service"] == wrapper.parent.name and prov["operation"] == wrapper.name
    assert (workdir / "logs" / f"{wrapper.parent.name}_{wrapper.name}.log").exists()


def test_script_directive(tmp_path, env):
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "Snakefile").write_text(
        f'''
rule region:
    output:
        variants="results/region.tsv",
    params:
        chrom="chr22",
        start=16387675,
        end=16390908,
        filter=["ne:PASS", "ne:SVM"],
    log:
        "logs/region.log",
    script:
        "{REPO / 'wrappers' / 'bravo' / 'region' / 'wrapper.py'}"
'''
    )
    done = run_snakemake(workdir, env)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_tsv(workdir / "results" / "region.tsv")
    assert rows and all(r["filter"] not in ("PASS", "SVM") for r in rows)


def test_wrapper_failure_fails_the_rule_with_one_line(tmp_path, env):
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "Snakefile").write_text(
        '''
rule gene:
    output:
        variants="results/gene.tsv",
    params:
        name="NOSUCHGENE1",
    log:
        "logs/gene.log",
    wrapper:
        "bravo/gene"
'''
    )
    done = run_snakemake(workdir, env)
    assert done.returncode != 0
    assert "gensvc bravo gene: bravo refused the query: Gene with name or identifier equal to NOSUCHGENE1 was not found." in done.stderr
    assert not (workdir / "results" / "gene.tsv").exists()
    assert "NOSUCHGENE1" in (workdir / "logs" / "gene.log").read_text()


def test_wrapper_standalone_takes_cli_arguments(tmp_path, env):
    out = tmp_path / "v.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "wrappers" / "bravo" / "variant" / "wrapper.py"),
         "--variant-id", "22-16389447-A-G", "--output", f"variants={out}"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert read_json(out)["variants"][0]["allele_count"] == 6261


def test_cli_list_and_help(env):
    listed = run_gensvc(["list"], env)
    assert listed.returncode == 0
    names = {tuple(line.split()[:2]) for line in listed.stdout.splitlines()}
    assert {(w.parent.name, w.name) for w in WRAPPERS} <= names
    helped = run_gensvc(["bravo", "region", "--help"], env)
    assert helped.returncode == 0
    for flag in ("--chrom", "--allele-freq", "--sort", "--token-file", "--output NAME=PATH"):
        assert flag in helped.stdout
    assert "exit codes" in helped.stdout


def test_every_wrapper_has_its_parts():
    import yaml

    for wrapper in WRAPPERS:
        service, operation = wrapper.parent.name, wrapper.name
        meta = yaml.safe_load((wrapper / "meta.yaml").read_text())
        assert meta["name"] == f"{service} {operation}" and meta["url"].startswith("https://")
        assert (wrapper / "environment.yaml").is_file()  # its contents: tests/test_env_files.py
        assert (REPO / "schemas" / service / f"{operation}.yaml").exists()
        code = [l for l in (wrapper / "wrapper.py").read_text().splitlines() if l.strip() and not l.startswith("#")]
        assert len(code) <= 10
        wrapper_text = (wrapper / "wrapper.py").read_text()
        assert "pysam" not in wrapper_text


def test_operations_that_read_no_vcf_do_not_import_pysam(tmp_path, env):
    script = (
        "import sys, runpy\n"
        f"sys.argv = ['wrapper.py', '--chrom', '22', '--start', '16387675', '--end', '16390908', '--output', 'variants={tmp_path / 'r.tsv'}']\n"
        "try:\n"
        f"    runpy.run_path('{REPO / 'wrappers' / 'bravo' / 'region' / 'wrapper.py'}', run_name='__main__')\n"
        "except SystemExit as done:\n"
        "    print('exit', done.code, 'pysam' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "exit 0 False", done.stderr


def test_gensvc_emulate_prints_one_line_per_service_and_stops(tmp_path):
    import json
    import signal

    import requests

    server = subprocess.Popen(
        [sys.executable, "-m", "gensvc.cli", "emulate", "bravo", "--port", "0", "--tokens", "t0ken-a,t0ken-b"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        line = json.loads(server.stdout.readline())
        assert line["service"] == "bravo" and line["url"].startswith("http://127.0.0.1:")
        answer = requests.get(line["url"], headers={"Authorization": "Bearer t0ken-b"}, timeout=5)
        assert answer.status_code == 200 and answer.json()["api_version"] == "v1"
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=10) == 0
