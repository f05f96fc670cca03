"""Each operation is described once, in schemas/<service>/<operation>.yaml: its wrapper's
meta.yaml, the wrapper's docstring and the README's wrapper table are generated from it by
`gensvc dev sync-docs`, and `--check` fails on any drift. Function defaults against the
schema: tests/unit/test_schema_defaults.py."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import REPO


def sync_docs(root: Path, *args: str) -> subprocess.CompletedProcess:
    """`gensvc dev sync-docs` of the gensvc found in ``root`` (the checkout it documents)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-m", "gensvc.cli", "dev", "sync-docs", *args],
                          env=env, cwd=root, capture_output=True, text=True, timeout=120)


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A copy of the parts of the repository the generator reads and writes."""
    root = tmp_path / "repo"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".snakemake", "results", "logs", ".gensvc")
    for part in ("gensvc", "schemas", "wrappers"):
        shutil.copytree(REPO / part, root / part, symlinks=True, ignore=skip)
    shutil.copy2(REPO / "README.md", root / "README.md")
    return root


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not once in {path}"
    path.write_text(text.replace(old, new))


def test_the_generated_docs_in_the_repository_match_the_schemas():
    done = sync_docs(REPO, "--check")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_a_changed_schema_default_fails_the_check_until_the_docs_are_regenerated(checkout):
    schema_file = checkout / "schemas" / "cgi" / "download.yaml"
    edit(schema_file, "max_files: {type: integer, minimum: 1, default: 100,", "max_files: {type: integer, minimum: 1, default: 50,")
    done = sync_docs(checkout, "--check")
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert any("wrappers/cgi/download/meta.yaml" in line and "schemas/cgi/download.yaml" in line for line in lines), done.stderr
    assert "gensvc dev sync-docs" in lines[-1]
    assert "Traceback" not in done.stderr
    assert sync_docs(checkout).returncode == 0
    meta = yaml.safe_load((checkout / "wrappers" / "cgi" / "download" / "meta.yaml").read_text())
    assert "default 50" in meta["params"]["max_files"]
    again = sync_docs(checkout, "--check")
    assert again.returncode == 0, again.stderr


def test_a_hand_edit_of_generated_text_is_reported_and_undone(checkout):
    meta_file = checkout / "wrappers" / "bravo" / "region" / "meta.yaml"
    wrapper_file = checkout / "wrappers" / "bravo" / "region" / "wrapper.py"
    meta_file.write_text(meta_file.read_text().replace("Chromosome", "Chromosome name"))
    wrapper_file.write_text(wrapper_file.read_text().replace('"""bravo region', '"""Bravo regions', 1))
    done = sync_docs(checkout, "--check")
    assert done.returncode == 2
    assert "wrappers/bravo/region/meta.yaml" in done.stderr and "wrappers/bravo/region/wrapper.py" in done.stderr
    assert sync_docs(checkout).returncode == 0
    assert "Chromosome name" not in meta_file.read_text()
    assert wrapper_file.read_text().splitlines()[-1] == 'run_wrapper(__file__, globals().get("snakemake"))'


def test_the_readme_table_follows_the_schemas_and_the_rest_of_the_readme_is_kept(checkout):
    readme = checkout / "README.md"
    begin, end = "<!-- wrappers:begin -->", "<!-- wrappers:end -->"
    before, _, after = readme.read_text().partition(begin)
    after = after.partition(end)[2]
    schema_file = checkout / "schemas" / "cgi" / "list.yaml"
    summary = yaml.safe_load(schema_file.read_text())["x-summary"]
    edit(schema_file, summary, "every job of the account, newest first")
    readme.write_text(readme.read_text().replace("Services: Bravo", "Services (hand-written): Bravo"))
    done = sync_docs(checkout, "--check")
    assert done.returncode == 2 and "README.md" in done.stderr, done.stderr
    assert sync_docs(checkout).returncode == 0
    text = readme.read_text()
    assert re.search(r"^\| `cgi/list` \| every job of the account, newest first \|", text, re.M), text
    assert text.startswith(before.replace("Services: Bravo", "Services (hand-written): Bravo"))
    assert text.endswith(after)


def test_a_new_operation_gets_its_meta_yaml_and_wrapper_and_a_readme_row(checkout):
    schema_file = checkout / "schemas" / "cgi" / "list.yaml"
    shutil.copy2(schema_file, checkout / "schemas" / "cgi" / "jobs.yaml")
    edit(checkout / "schemas" / "cgi" / "jobs.yaml", "title: cgi/list", "title: cgi/jobs")
    done = sync_docs(checkout, "--check")
    assert done.returncode == 2 and "wrappers/cgi/jobs/meta.yaml" in done.stderr, done.stderr
    assert sync_docs(checkout).returncode == 0
    folder = checkout / "wrappers" / "cgi" / "jobs"
    assert yaml.safe_load((folder / "meta.yaml").read_text())["name"] == "cgi jobs"
    assert (folder / "wrapper.py").read_text().endswith('run_wrapper(__file__, globals().get("snakemake"))\n')
    assert "| `cgi/jobs` |" in (checkout / "README.md").read_text()


def test_generated_files_say_where_they_come_from():
    for meta_file in sorted((REPO / "wrappers").glob("*/*/meta.yaml")):
        service, operation = meta_file.parent.parent.name, meta_file.parent.name
        source = f"schemas/{service}/{operation}.yaml"
        for path in (meta_file, meta_file.parent / "wrapper.py"):
            first = path.read_text().splitlines()[0]
            assert first.startswith("# generated from") and source in first and "gensvc dev sync-docs" in first, path
    readme = (REPO / "README.md").read_text()
    table = readme.partition("<!-- wrappers:begin -->")[2].partition("<!-- wrappers:end -->")[0]
    assert "gensvc dev sync-docs" in table.splitlines()[1]


def test_meta_yaml_is_shaped_as_snakemake_wrappers_writes_it():
    for meta_file in sorted((REPO / "wrappers").glob("*/*/meta.yaml")):
        meta = yaml.safe_load(meta_file.read_text())
        assert set(meta) <= {"name", "description", "url", "authors", "input", "output", "params", "notes"}
        assert {"name", "description", "url", "authors", "output", "notes"} <= set(meta), meta_file
        assert meta["url"].startswith("https://") and meta["authors"] and isinstance(meta["authors"], list)
        for kind in ("input", "output", "params"):
            for name, line in (meta.get(kind) or {}).items():
                assert isinstance(line, str) and "\n" not in line and line, (meta_file, kind, name)


def test_a_schema_without_the_api_docs_url_is_named_in_one_line(checkout):
    edit(checkout / "schemas" / "cgi" / "poll.yaml", "x-url: https://www.cancergenomeinterpreter.org/rest_api\n", "")
    for args in (("--check",), ()):
        done = sync_docs(checkout, *args)
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1 and "schemas/cgi/poll.yaml" in done.stderr and "x-url" in done.stderr, done.stderr


def test_dev_help_is_on_stdout_and_dev_stays_out_of_the_usage_line():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    helped = subprocess.run([sys.executable, "-m", "gensvc.cli", "dev", "--help"], env=env, capture_output=True, text=True)
    assert helped.returncode == 0 and "sync-docs" in helped.stdout
    usage = subprocess.run([sys.executable, "-m", "gensvc.cli", "--help"], env=env, capture_output=True, text=True)
    assert "dev" not in usage.stdout.split()


def test_every_declared_default_is_in_its_meta_yaml_line():
    from gensvc import schema

    for service, operation, _ in schema.operations():
        meta = yaml.safe_load((REPO / "wrappers" / service / operation / "meta.yaml").read_text())
        for name, spec in schema.load(service, operation)["properties"]["params"]["properties"].items():
            default = spec.get("default")
            if default in (None, "", []):
                continue
            shown = ",".join(map(str, default)) if isinstance(default, list) else str(default)
            shown = shown.lower() if isinstance(default, bool) else shown
            assert f"default {shown}" in meta["params"][name], (service, operation, name, meta["params"][name])
