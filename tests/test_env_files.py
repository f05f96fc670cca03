"""The conda env files, checked without conda (none can run or reach a channel here).

Every wrapper's environment.yaml and every file in envs/ is valid YAML with conda-forge and
nodefaults, names only packages kept in tests/data/conda_packages.tsv at a major.minor series
listed there (and agreeing with pyproject.toml), and installs gensvc through a line that pip,
given GENSVC_CHECKOUT, accepts: pip itself reads it, as conda hands it over, in a dry run.
The workflow's steps use their wrappers' env files; envs/ holds only what no wrapper covers.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from helpers import REPO

WRAPPER_ENVS = sorted((REPO / "wrappers").glob("*/*/environment.yaml"))
OWN_ENVS = sorted((REPO / "envs").glob("*.yaml"))
ENV_FILES = WRAPPER_ENVS + OWN_ENVS
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
PIN = re.compile(r"(?P<name>[a-z0-9][a-z0-9._-]*) =(?P<series>\d+\.\d+)")
PIP_VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)\}")  # the only form pip expands in requirements


def known_packages() -> dict[str, dict]:
    lines = [line for line in (REPO / "tests" / "data" / "conda_packages.tsv").read_text().splitlines()
             if line and not line.startswith("#")]
    header = lines[0].split("\t")
    return {row["name"]: row for row in (dict(zip(header, line.split("\t"))) for line in lines[1:])}


def conda_and_pip(path: Path) -> tuple[list[str], list[str]]:
    env = yaml.safe_load(path.read_text())
    conda = [dep for dep in env["dependencies"] if isinstance(dep, str)]
    pip = [spec for dep in env["dependencies"] if isinstance(dep, dict) for spec in dep["pip"]]
    return conda, pip


def rule_blocks() -> list[str]:
    text = "".join(p.read_text() for p in sorted((REPO / "workflow" / "rules").glob("*.smk")))
    return re.split(r"\n\s*rule ", text)[1:]


def test_every_wrapper_has_an_env_file_and_every_env_file_has_channels_and_pins():
    assert len(WRAPPER_ENVS) == len(list((REPO / "wrappers").glob("*/*/wrapper.py"))) > 0
    for path in ENV_FILES:
        env = yaml.safe_load(path.read_text())
        assert set(env) <= {"name", "channels", "dependencies"}, path
        assert env["channels"][0] == "conda-forge" and "nodefaults" in env["channels"], path
        assert "defaults" not in env["channels"], path
        conda, _ = conda_and_pip(path)
        for dep in conda:
            assert PIN.fullmatch(dep), f"{path}: {dep!r} is not 'name =MAJOR.MINOR'"


def test_every_conda_package_is_a_known_one_at_a_known_series():
    known = known_packages()
    for path in ENV_FILES:
        conda, pip = conda_and_pip(path)
        channels = yaml.safe_load(path.read_text())["channels"]
        for dep in conda:
            pin = PIN.fullmatch(dep)
            entry = known.get(pin["name"])
            assert entry, f"{path}: {pin['name']} is not in tests/data/conda_packages.tsv"
            assert entry["channel"] in channels, f"{path}: {pin['name']} comes from {entry['channel']}"
            assert pin["series"] in entry["series"].split(), f"{path}: {dep} is not a series kept for it"
        if pip:
            assert any(PIN.fullmatch(dep)["name"] == "pip" for dep in conda), f"{path}: pip section without pip"


def test_conda_pins_agree_with_pyproject():
    """The report's matplotlib is the one the tests run with; python satisfies requires-python."""
    test_pins = {Requirement(spec).name.lower(): Requirement(spec) for spec in PROJECT["optional-dependencies"]["test"]}
    python = Requirement(f"python{PROJECT['requires-python']}")
    for path in ENV_FILES:
        for dep in conda_and_pip(path)[0]:
            pin = PIN.fullmatch(dep)
            assert pin, f"{path}: {dep!r} is not 'name =MAJOR.MINOR'"
            if pin["name"] == "python":
                assert python.specifier.contains(f"{pin['series']}.0"), f"{path}: {dep}"
            pypi = known_packages()[pin["name"]]["pypi"]
            if pypi in test_pins:
                assert all(s.version.startswith(pin["series"] + ".") for s in test_pins[pypi].specifier), f"{path}: {dep}"


def test_gensvc_is_named_by_a_path_pip_expands_and_no_transitive_dependency_is_pinned():
    for path in WRAPPER_ENVS:
        conda, pip = conda_and_pip(path)
        assert [PIN.fullmatch(dep)["name"] for dep in conda] == ["python", "pip"], path
        assert len(pip) == 1, path
        assert PIP_VARIABLE.findall(pip[0]) == ["GENSVC_CHECKOUT"], path
        expanded = PIP_VARIABLE.sub(str(REPO), pip[0])
        requirement = Requirement(expanded)
        assert requirement.name == "gensvc" and requirement.url == REPO.as_uri(), path
        assert not requirement.extras, f"{path}: a wrapper needs no extra (the emulators' brings Flask)"
    assert tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["name"] == "gensvc"


def test_pip_accepts_the_gensvc_line_as_conda_hands_it_over(tmp_path):
    """conda writes an env's pip section to a requirements file and runs pip on it; pip must
    expand GENSVC_CHECKOUT and find gensvc there, with no index."""
    checkout = tmp_path / "gensvc"  # a copy: pip prepares metadata in the tree it is given
    shutil.copytree(REPO, checkout, ignore=shutil.ignore_patterns(
        ".git", ".venv*", ".snakemake", ".gensvc", "results", "logs", "build", "*.egg-info",
        "__pycache__", ".pytest_cache", "tests", "bench", "workflow", ".test"))
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("GENSVC_", "PYTHON"))}
    sections = {tuple(conda_and_pip(path)[1]) for path in ENV_FILES} - {()}
    assert sections, "no env file installs anything with pip"
    for number, section in enumerate(sorted(sections)):
        requirements = tmp_path / f"condaenv.{number}.requirements.txt"
        requirements.write_text("\n".join(section) + "\n")
        report = tmp_path / f"report.{number}.json"
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--ignore-installed",
             "--quiet", "--report", str(report), "-r", str(requirements)],
            env={**environment, "GENSVC_CHECKOUT": str(checkout)},
            capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{section}: {done.stderr[-3000:]}"
        installs = json.loads(report.read_text())["install"]
        assert [(item["metadata"]["name"], item["download_info"]["url"]) for item in installs] == [
            ("gensvc", checkout.as_uri())]


def test_the_workflows_steps_use_their_wrappers_env_files_and_envs_holds_only_the_rest():
    used = set()
    for block in rule_blocks():
        name = block.split(":", 1)[0]
        conda = re.search(r'\n\s+conda:\n\s+"([^"]+)"', block)
        if "wrapper:" in block:
            assert not conda, f"rule {name} names a second env file; its wrapper's is the one"
        elif "script:" in block or "shell:" in block:
            assert conda, f"rule {name} runs software and names no env file"
        if conda:
            target = (REPO / "workflow" / "rules" / conda.group(1)).resolve()
            assert target.is_file(), f"rule {name}: {conda.group(1)} does not exist"
            used.add(target)
    assert set(OWN_ENVS) == used, "envs/ holds files no rule uses"
    for path in OWN_ENVS:
        assert "gensvc" not in yaml.safe_dump(yaml.safe_load(path.read_text())), f"{path} repeats a wrapper's env"
