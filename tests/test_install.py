"""gensvc as a user installs it: a fresh venv holding only Snakemake and `pip install <checkout>`,
a Snakefile of the user's own outside the repository, the Bravo emulator on loopback.

The venv is made once for the module (pip may use this machine's package cache); an
internal error is met honestly, by taking pysam out of that venv and putting it back after.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from helpers import BRAVO_TOKEN, REPO, read_tsv
from gensvc.emulators.bravo_data import variants_in

pytestmark = pytest.mark.slow  # pip builds gensvc and installs Snakemake: about a minute

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
SNAKEMAKE = next(spec for spec in PROJECT["optional-dependencies"]["test"] if spec.startswith("snakemake"))
PYSAM = next(spec for spec in PROJECT["dependencies"] if spec.startswith("pysam"))
VCF = (
    "##fileformat=VCFv4.2\n"
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    "chr22\t16390137\t.\tT\tA,C\t50\tPASS\t.\n"
    "chr22\t40000003\t.\tG\tT\t50\tPASS\t.\n"
)
SNAKEFILE = """\
rule bravo_frequencies:
    input:
        vcf="calls/sample.vcf",
    output:
        table="results/sample.bravo.tsv",
    log:
        "logs/sample.bravo.log",
    wrapper:
        "bravo/frequencies"
"""


def outside_environment(**extra) -> dict:
    """The environment of a shell with nothing of this checkout or of our own venv on it."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("GENSVC_", "SB_", "PYTHON", "VIRTUAL_ENV"))}
    return {**clean, **extra}


def pip(venv: Path, *args) -> None:
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "--quiet", *args],
                          env=outside_environment(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """This checkout's sources as a clone has them (pip builds in the tree it is given)."""
    copy = tmp_path_factory.mktemp("checkout") / "gensvc"
    shutil.copytree(REPO, copy, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv*", ".snakemake", ".gensvc", "results", "logs", "build", "*.egg-info",
        "__pycache__", ".pytest_cache"))
    return copy


@pytest.fixture(scope="module")
def venv(tmp_path_factory, checkout) -> Path:
    """`python -m venv`, then the README's install: Snakemake and the checkout, nothing else."""
    venv = tmp_path_factory.mktemp("user") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip(venv, "install", SNAKEMAKE, str(checkout))
    return venv


@pytest.fixture
def without_pysam(venv):
    pip(venv, "uninstall", "--yes", "pysam")
    yield venv
    pip(venv, "install", PYSAM)


@pytest.fixture
def workflow(tmp_path, bravo):
    """A user's own workflow directory, and the environment that runs it."""
    workdir = tmp_path / "my-analysis"
    (workdir / "calls").mkdir(parents=True)
    (workdir / "calls" / "sample.vcf").write_text(VCF)
    (workdir / "Snakefile").write_text(SNAKEFILE)
    home = tmp_path / "home"
    home.mkdir()
    return workdir, home


def run_in(venv, workdir, home, bravo, command) -> subprocess.CompletedProcess:
    env = outside_environment(
        PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        HOME=str(home),
        GENSVC_BRAVO_URL=bravo.url,
        GENSVC_BRAVO_TOKEN=BRAVO_TOKEN,
        GENSVC_STATE_DIR=str(workdir / ".gensvc"),
    )
    return subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=300)


def snakemake(venv) -> list[str]:
    return [str(venv / "bin" / "snakemake"), "--cores", "1", "--wrapper-prefix", f"{(REPO / 'wrappers').as_uri()}/"]


def test_a_plain_pip_install_runs_a_wrapper_from_the_users_own_snakefile(venv, workflow, bravo):
    workdir, home = workflow
    done = run_in(venv, workdir, home, bravo, snakemake(venv))
    assert done.returncode == 0, done.stderr[-4000:]
    rows = read_tsv(workdir / "results" / "sample.bravo.tsv")
    truth = {(v["pos"], v["alt"]): v["allele_freq"] for v in variants_in("22", 16390137, 16390138)}
    found = {(int(row["pos"]), row["alt"]): row["allele_freq"] and float(row["allele_freq"]) for row in rows}
    assert found == {(16390137, "A"): truth[16390137, "A"], (16390137, "C"): truth[16390137, "C"], (40000003, "T"): ""}
    where = run_in(venv, workdir, home, bravo, ["python", "-c", "import gensvc, pysam; print(gensvc.__file__)"])
    assert where.stdout.strip().startswith(str(venv)), where.stdout + where.stderr  # the installed copy ran


def test_an_internal_error_is_one_line_on_stderr_and_its_traceback_is_in_the_rules_log(without_pysam, workflow, bravo):
    workdir, home = workflow
    done = run_in(without_pysam, workdir, home, bravo, snakemake(without_pysam))
    assert done.returncode != 0
    line = "internal error in gensvc bravo frequencies: ModuleNotFoundError: No module named 'pysam'"
    said = [text for text in done.stderr.splitlines() if text.startswith("internal error")]
    assert len(said) == 1 and said[0].startswith(line) and "the log has the details" in said[0], done.stderr
    assert "pip install gensvc again" in said[0]  # what to do about a missing module
    assert "Traceback" not in done.stderr
    log = (workdir / "logs" / "sample.bravo.log").read_text()
    assert "Traceback (most recent call last)" in log and "import pysam" in log and line in log
    assert not (workdir / "results" / "sample.bravo.tsv").exists()


def test_an_internal_error_on_the_command_line_exits_1_with_one_line_and_the_log(without_pysam, workflow, bravo):
    workdir, home = workflow
    gensvc = ["gensvc", "bravo", "frequencies", "--input", "vcf=calls/sample.vcf", "--output", "table=out.tsv"]
    logged = run_in(without_pysam, workdir, home, bravo, [*gensvc, "--log", "run.log"])
    assert logged.returncode == 1
    assert logged.stderr.count("\n") == 1 and logged.stderr.startswith("internal error in gensvc bravo frequencies:")
    assert "Traceback (most recent call last)" in (workdir / "run.log").read_text()
    # without --log the traceback goes to a file of its own, which the line names
    alone = run_in(without_pysam, workdir, home, bravo, gensvc)
    assert alone.returncode == 1 and alone.stderr.count("\n") == 1, alone.stderr
    named = Path(alone.stderr.rstrip().rsplit(" ", 1)[-1])
    assert "ModuleNotFoundError: No module named 'pysam'" in (workdir / named).read_text()
    assert not (workdir / "out.tsv").exists()


def test_a_plain_pip_install_ships_py_typed_brings_no_flask_and_gensvc_emulate_says_how_to_get_it(venv, tmp_path):
    """The emulators are an extra: a wrapper's install (the test above) runs without Flask."""
    env = outside_environment(PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", HOME=str(tmp_path))
    probe = ("import importlib.util, pathlib, gensvc; "
             "print(importlib.util.find_spec('flask'), importlib.util.find_spec('werkzeug'), "
             "(pathlib.Path(gensvc.__file__).parent / 'py.typed').is_file())")
    found = subprocess.run([str(venv / "bin" / "python"), "-c", probe], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=60)
    assert found.stdout.split() == ["None", "None", "True"], found.stdout + found.stderr
    for command in (["emulate", "bravo", "--port", "0"], ["demo"]):
        done = subprocess.run(["gensvc", *command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith(f"gensvc {command[0]}: ") and "pip install 'gensvc[emulators]'" in done.stderr
