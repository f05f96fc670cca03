"""Help and messages that tell a new user what to do: --help, list, demo --help, hints."""

from __future__ import annotations

import re
import socket

import pytest
import yaml

from helpers import REPO, isolated_env, read_json, run_gensvc, run_snakemake
from test_bravo_operations import frequency_input, write_vcf
from test_cgi import EMAIL, TOKEN, cgi, cgi_env, cgi_server, mutations, stats  # noqa: F401 (fixtures)

SCHEMAS = sorted((REPO / "schemas").glob("*/*.yaml"))
# operations whose schema declares a default or a choice somewhere in its params
DECLARING = [p for p in SCHEMAS if re.search(r"\b(default|enum):", p.read_text())]


@pytest.fixture
def plain_env(tmp_path) -> dict:
    """No service settings or secrets of the user's own."""
    return isolated_env(tmp_path)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def help_of(service: str, operation: str, env) -> str:
    done = run_gensvc([service, operation, "--help"], env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def flat(text: str) -> str:
    """Help text with argparse's line wrapping undone."""
    return " ".join(text.split())


def section(text: str, title: str) -> str:
    """The lines of one help section, from its title to the next blank line."""
    match = re.search(rf"^{re.escape(title)}.*?(?=^\S|\Z)", text, re.M | re.S)
    assert match, f"no section {title!r} in:\n{text}"
    return match.group(0)


def test_help_marks_required_inputs_and_outputs(plain_env):
    text = help_of("bravo", "frequencies", plain_env)
    inputs, outputs = section(text, "inputs"), section(text, "outputs")
    assert re.search(r"^\s+vcf \(required\)\s+VCF, plain or bgzipped", inputs, re.M), text
    assert re.search(r"^\s+table \(required\)\s+TSV", outputs, re.M), text


def test_help_of_optional_inputs_says_which_are_needed(plain_env):
    text = help_of("cgi", "submit", plain_env)
    inputs = flat(section(text, "inputs"))
    assert "give at least one of mutations, cnas, translocations" in inputs
    assert "(required)" not in inputs and "mutations" in inputs and "translocations" in inputs


def test_help_of_an_operation_without_inputs_has_no_input_flag(plain_env):
    text = help_of("bravo", "info", plain_env)
    assert "--input" not in text and "(none)" not in text and "inputs" not in text
    assert re.search(r"^\s+info \(required\)", section(text, "outputs"), re.M)


def test_help_shows_enum_choices_and_defaults(plain_env):
    text = flat(help_of("cgi", "submit", plain_env))
    assert re.search(r"--reference \{auto,hg19,hg38,GRCh37,GRCh38\}", text), text
    assert re.search(r"--reference \{[^}]*\} Genome of the coordinates .*; default auto\b", text), text
    text = flat(help_of("opencravat", "submit", plain_env))
    assert "--assembly {auto,hg38,hg19,hg18}" in text and "default auto" in text
    assert "e.g. tsv,vcf; default tsv" in text


@pytest.mark.parametrize("path", DECLARING, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_help_renders_every_declared_default_and_choice(plain_env, path):
    declared = yaml.safe_load(path.read_text())
    text = flat(help_of(path.parent.name, path.stem, plain_env))
    for name, spec in declared["properties"]["params"].get("properties", {}).items():
        spec = {**declared.get("$defs", {}).get(spec.get("$ref", "/").rsplit("/", 1)[-1], {}), **spec}
        flag = f"--{name.replace('_', '-')}"
        if "enum" in spec:
            assert f"{flag} {{{','.join(map(str, spec['enum']))}}}" in text, (name, text)
        default = spec.get("default")
        if default not in (None, "", []):
            shown = ",".join(map(str, default)) if isinstance(default, list) else str(default)
            shown = shown.lower() if isinstance(default, bool) else shown  # help writes true/false
            assert re.search(rf"default {re.escape(shown)}\b", text), (name, text)


@pytest.mark.parametrize("service, variables", [
    ("bravo", ["GENSVC_BRAVO_TOKEN"]),
    ("cgi", ["GENSVC_CGI_EMAIL", "GENSVC_CGI_TOKEN"]),
    ("opencravat", ["GENSVC_OPENCRAVAT_USER", "GENSVC_OPENCRAVAT_PASSWORD"]),
])
def test_help_names_the_environment_variables_of_the_services_secrets(plain_env, service, variables):
    operation = {"bravo": "region", "cgi": "submit", "opencravat": "submit"}[service]
    text = flat(help_of(service, operation, plain_env))
    for variable in variables:
        assert variable in text, text
    assert f"GENSVC_{service.upper()}_URL" in text


def test_help_of_a_local_operation_names_no_secrets(plain_env):
    text = help_of("merge", "annotations", plain_env)
    assert "GENSVC_" not in text and "secret" not in text


def test_list_and_usage_name_only_services_with_operations(plain_env):
    listed = run_gensvc(["list"], plain_env)
    assert listed.returncode == 0
    services = {line.split()[0] for line in listed.stdout.splitlines()}
    assert services == {"bravo", "cavatica", "cgi", "merge", "opencravat", "opencga"}
    usage = run_gensvc(["--help"], plain_env)
    assert usage.returncode == 0
    assert "bravo, opencravat, cgi, cavatica, opencga" in usage.stdout


def test_demo_help_prints_the_demos_own_help_and_starts_nothing(plain_env):
    done = run_gensvc(["demo", "--help"], plain_env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: gensvc demo")
    assert "emulator" in done.stdout and "results/report.html" in done.stdout
    assert "emulator bravo: http" not in done.stdout  # no emulator was started
    assert "--snakefile" not in done.stdout  # not Snakemake's own help


def test_a_cancer_type_that_does_not_match_says_what_is_expected(tmp_path, cgi_env, cgi, mutations):
    done = run_gensvc(["cgi", "submit", "--input", f"mutations={mutations}", "--cancer-type", "breast cancer",
                       "--output", f"receipt={tmp_path / 'r.json'}"], cgi_env)
    assert done.returncode == 2
    assert ("params.cancer_type: 'breast cancer' is not a CGI cancer type code such as BRCA; "
            "`gensvc cgi cancer-types` lists them") in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert stats(cgi)["requests"] == 0


def patterns(node, where=""):
    """(where, spec) of every schema node that has a pattern."""
    if isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            yield where, node
        for key, value in node.items():
            yield from patterns(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from patterns(value, f"{where}[{index}]")


@pytest.mark.parametrize("path", [p for p in [*SCHEMAS, REPO / "schemas" / "settings.yaml"] if "pattern:" in p.read_text()],
                         ids=lambda p: p.relative_to(REPO / "schemas").as_posix())
def test_every_param_pattern_says_in_words_what_it_expects(path):
    found = list(patterns(yaml.safe_load(path.read_text())))
    for where, spec in found:
        assert spec.get("x-expected", "").startswith(("a ", "an ")), f"{path.name}{where}: no x-expected words"


def test_a_sort_that_does_not_match_says_what_is_expected(env, tmp_path):
    done = run_gensvc(["bravo", "region", "--chrom", "22", "--start", "1", "--end", "100", "--sort", "freq:down",
                       "--output", f"variants={tmp_path / 'r.tsv'}"], env)
    assert done.returncode == 2
    assert "params.sort: 'freq:down' is not a comma list of keys (pos, allele_count" in done.stderr, done.stderr


def test_an_unknown_cancer_type_points_to_the_listing(tmp_path, cgi_env, cgi, mutations):
    done = run_gensvc(["cgi", "submit", "--input", f"mutations={mutations}", "--cancer-type", "QQQQQQ",
                       "--output", f"receipt={tmp_path / 'r.json'}"], cgi_env)
    assert done.returncode == 2
    assert "`gensvc cgi cancer-types` lists them" in done.stderr
    assert stats(cgi)["requests"] == 0


def test_a_cancer_type_in_lower_case_is_sent_in_cgis_spelling(tmp_path, cgi_env, cgi, mutations):
    done = run_gensvc(["cgi", "submit", "--input", f"mutations={mutations}", "--cancer-type", "aml-pr",
                       "--output", f"receipt={tmp_path / 'r.json'}"], cgi_env)
    assert done.returncode == 0, done.stderr
    receipt = read_json(tmp_path / "r.json")
    assert receipt["request"]["cancer_type"] == "AML-PR"
    listed = run_gensvc(["cgi", "list", "--output", f"jobs={tmp_path / 'jobs.json'}"], cgi_env)
    assert listed.returncode == 0, listed.stderr
    [job] = read_json(tmp_path / "jobs.json")["jobs"]
    assert job["metadata"]["cancertype"] == "AML-PR"  # what the emulator received


def test_cgi_cancer_types_lists_codes_and_names_and_sends_nothing(plain_env):
    env = {**plain_env, "GENSVC_CGI_URL": f"http://127.0.0.1:{closed_port()}/api/v1/"}
    done = run_gensvc(["cgi", "cancer-types"], env)
    assert done.returncode == 0, done.stderr
    rows = [line.split("\t") for line in done.stdout.splitlines()]
    assert len(rows) == 247 and ["BRCA", "Breast adenocarcinoma"] in rows  # 248 rows, AG twice
    assert ["AG", "Adrenal gland / Anaplastic oligodendroglioma"] in rows
    assert ["AML-PR", "Acute myeloid leukemia predisposition"] in rows
    found = run_gensvc(["cgi", "cancer-types", "myeloid"], env)
    assert found.returncode == 0
    codes = [line.split("\t")[0] for line in found.stdout.splitlines()]
    assert "AML" in codes and "ACML" in codes and "BRCA" not in codes
    assert run_gensvc(["cgi", "cancer-types", "--help"], env).stdout.startswith("usage: gensvc cgi cancer-types")
    assert any(line.split()[:2] == ["cgi", "cancer-types"] for line in run_gensvc(["list"], env).stdout.splitlines())


@pytest.mark.parametrize("operation, rule_files, says", [
    ("frequencies", 'input:\n        "sample.vcf",\n    output:\n        table="results/out.tsv",',
     "bravo frequencies takes input vcf (required); name it, e.g. input: vcf='sample.vcf'"),
    ("info", 'output:\n        "results/out.json",',
     "bravo info takes output info (required); name it, e.g. output: info='results/out.json'"),
])
def test_a_positional_snakemake_file_names_the_operations_own_names(tmp_path, env, operation, rule_files, says):
    workdir = tmp_path / "work"
    workdir.mkdir()
    _, records = frequency_input(tmp_path)
    write_vcf(workdir / "sample.vcf", records)
    (workdir / "Snakefile").write_text(
        f'rule unnamed:\n    {rule_files}\n    log:\n        "logs/unnamed.log",\n    wrapper:\n        "bravo/{operation}"\n'
    )
    done = run_snakemake(workdir, env)
    assert done.returncode != 0
    assert says in done.stderr, done.stderr[-3000:]
    assert "variants=" not in done.stderr
    assert says in (workdir / "logs" / "unnamed.log").read_text()


def test_a_refused_connection_says_which_variable_holds_the_url(plain_env, tmp_path):
    port = closed_port()
    env = {**plain_env, "GENSVC_BRAVO_URL": f"http://127.0.0.1:{port}/", "GENSVC_BRAVO_TOKEN": "t",
           "GENSVC_BRAVO_MAX_ATTEMPTS": "2", "GENSVC_BRAVO_BACKOFF": "0.01"}
    done = run_gensvc(["bravo", "info", "--output", f"info={tmp_path / 'info.json'}"], env)
    assert done.returncode == 5
    [line] = done.stderr.strip().splitlines()
    assert "no connection" in line and f"127.0.0.1:{port}" in line
    assert "check GENSVC_BRAVO_URL" in line, line
