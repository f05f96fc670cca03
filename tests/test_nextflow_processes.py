"""examples/nextflow's modules run as Nextflow runs a process, against the emulators.

Nextflow itself cannot run here (its launcher downloads its jar), so each process is run the
way Nextflow runs it: a fresh work directory, the inputs staged into it as symlinks, the
process's `script:` block (read from its main.nf, its variables filled in) written as
`.command.sh` and run with `bash -ue` (Nextflow's default process.shell), its exit status checked and its declared outputs collected
from the work directory. The environment is the one nextflow.config gives every task: the
state directory in the launch directory. Parsing the .nf text is deliberately simple: a module
whose script or outputs change breaks this test.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import textwrap
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests
import yaml

from helpers import REPO, read_tsv
from gensvc.emulators.server import start_emulator

pytestmark = pytest.mark.slow

EXAMPLE = REPO / "examples" / "nextflow"
EMULATED = {"bravo": {}, "opencravat": {"time_scale": 0.5}, "cgi": {"time_scale": 0.05}}
CREDENTIALS = {"bravo": {"token": "bravo-demo-token"}, "cgi": {"email": "nf@example.org", "token": "cgi-demo-token"}}


class Process:
    """One process of a module's main.nf: its name, inputs, outputs and script template."""

    def __init__(self, path: Path):
        text = path.read_text()
        self.name = re.search(r"^process (\w+) \{", text, re.M).group(1)
        self.inputs = re.findall(r"path\((\w+)\)", section(text, "input"))
        self.outputs = re.findall(r'path\s*\(?\s*"([^"]+)"', section(text, "output"))
        script = text.split("    script:\n", 1)[1]
        self.preamble, self.template = script.split('    """\n', 1)
        self.template = self.template.split('    """\n', 1)[0]

    def variables(self, meta_id: str, ext_args: str) -> dict[str, str]:
        values = {"meta.id": meta_id, "task.process": self.name}
        for line in self.preamble.splitlines():  # `[def] NAME = task.ext.X ?: DEFAULT`
            found = re.match(r"\s*(?:def )?(\w+) = task\.ext\.(\w+) \?: (.+)$", line.strip())
            if found:
                name, ext, default = found.groups()
                given = ext_args if ext == "args" else None
                values[name] = given if given is not None else fill(default.strip("'\""), values)
        return values

    def command_sh(self, values: dict[str, str]) -> str:
        body = fill(self.template, values)
        # Groovy string escapes, then Nextflow's stripIndent
        body = body.replace("\\\\", "\0").replace("\\$", "$").replace("\0", "\\")
        return "#!/bin/bash -ue\n" + textwrap.dedent(body)


def section(text: str, name: str) -> str:
    return re.search(rf"^    {name}:\n(.*?)\n\n", text, re.M | re.S).group(1)


def fill(template: str, values: dict[str, str]) -> str:
    def value(match):
        expression = match.group(1)
        if expression not in values:
            raise AssertionError(f"the script uses ${{{expression}}}, which this test does not know")
        return values[expression]

    return re.sub(r"(?<!\\)\$\{([\w.]+)\}", value, template)


def config_ext_args() -> dict[str, str]:
    """ext.args per process from nextflow.config, its ${params.X} filled from the params block."""
    config = (EXAMPLE / "nextflow.config").read_text()
    params = dict(re.findall(r"^\s+(\w+)\s*=\s*'([^']*)'", config.split("params {", 1)[1].split("\n}", 1)[0], re.M))
    args = {}
    for name, template in re.findall(r"withName: '(\w+)'\s*\{ ext\.args = \{ \"([^\"]*)\" \} \}", config):
        args[name] = re.sub(r"\$\{params\.(\w+)\}", lambda m: params[m.group(1)], template)
    return args


def config_state_dir(launch_dir: Path) -> Path:
    """Where nextflow.config puts GENSVC_STATE_DIR, for a run launched in launch_dir."""
    config = (EXAMPLE / "nextflow.config").read_text()
    assert re.search(r"env \{\s*GENSVC_STATE_DIR = params\.state_dir\s*\}", config)
    state_dir = re.search(r'state_dir\s*=\s*"([^"]+)"', config).group(1)
    return Path(state_dir.replace("${launchDir}", str(launch_dir)))


class Launch:
    """A launch directory and the environment nextflow.config gives every task."""

    def __init__(self, root: Path, emulators: dict):
        self.dir = root / "launch"
        self.dir.mkdir()
        credentials = root / "credentials.yaml"
        credentials.write_text(yaml.safe_dump(CREDENTIALS))
        credentials.chmod(0o600)
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("GENSVC_", "SB_"))}
        self.env = {**clean, "HOME": str(root), "XDG_STATE_HOME": str(root / "xdg"),
                    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                    "GENSVC_CREDENTIALS": str(credentials), "GENSVC_STATE_DIR": str(config_state_dir(self.dir))}
        for service, emulator in emulators.items():
            self.env[f"GENSVC_{service.upper()}_URL"] = emulator.url
        self.args = config_ext_args()
        self.args["GENSVC_CGI_SUBMIT"] = self.args["GENSVC_CGI_SUBMIT"].replace("CANCER", "BRCA")
        self.tasks = 0

    def run(self, module: str, meta_id: str, inputs: list[Path], args: str | None = None):
        """Run one task; (exit code, {declared output: its path in the work dir}, work dir)."""
        process = Process(EXAMPLE / "modules" / "gensvc" / module / "main.nf")
        assert len(inputs) == len(process.inputs), (process.name, process.inputs)
        self.tasks += 1
        digest = hashlib.sha1(f"{process.name}{meta_id}{self.tasks}".encode()).hexdigest()
        work = self.dir / "work" / digest[:2] / digest[2:]
        work.mkdir(parents=True)
        values = process.variables(meta_id, self.args.get(process.name, "") if args is None else args)
        for name, source in zip(process.inputs, inputs):
            (work / source.name).symlink_to(source.resolve())  # staged as Nextflow does
            values[name] = source.name
        (work / ".command.sh").write_text(process.command_sh(values))
        done = subprocess.run(["bash", "-ue", ".command.sh"], cwd=work, env=self.env, capture_output=True, text=True,
                              timeout=180)
        (work / ".exitcode").write_text(str(done.returncode))
        outputs = {pattern: work / fill(pattern, values) for pattern in process.outputs}
        return done, outputs, work


@pytest.fixture(scope="module")
def emulators():
    with ExitStack() as stack:
        yield {s: stack.enter_context(start_emulator(s, **settings)) for s, settings in EMULATED.items()}


def collected(done, outputs: dict, process_name: str) -> dict[str, Path]:
    assert done.returncode == 0, done.stderr[-3000:]
    for pattern, path in outputs.items():
        assert path.is_file() and not path.is_symlink(), (process_name, pattern)
    versions = yaml.safe_load(outputs["versions.yml"].read_text())
    assert versions == {process_name: {"gensvc": "0.1.0"}}
    return {Path(pattern).name.split("}", 1)[-1]: path for pattern, path in outputs.items()}


def jobs(emulators) -> dict[str, int]:
    oc = requests.get(f"{emulators['opencravat'].root}/submit/jobs", timeout=5).json()
    cgi = requests.get(emulators["cgi"].url, timeout=5,
                       headers={"Authorization": f"{CREDENTIALS['cgi']['email']} {CREDENTIALS['cgi']['token']}"}).json()
    return {"opencravat": len(oc), "cgi": len(cgi)}


def test_every_module_runs_as_a_nextflow_task_and_main_nf_chains_them_into_a_merged_vcf(tmp_path, emulators):
    launch = Launch(tmp_path, emulators)
    vcf = REPO / ".test" / "data" / "tumour.vcf"
    step = lambda module, *inputs: collected(*launch.run(module, "tumour", list(inputs))[:2],  # noqa: E731
                                             Process(EXAMPLE / "modules/gensvc" / module / "main.nf").name)
    bravo = step("bravo/frequencies", vcf)
    oc_receipt = step("opencravat/submit", vcf)
    oc_status = step("opencravat/poll", oc_receipt[".opencravat.receipt.json"])
    oc_report = step("opencravat/report", oc_receipt[".opencravat.receipt.json"], oc_status[".opencravat.status.json"])
    cgi_receipt = step("cgi/submit", vcf)
    cgi_status = step("cgi/poll", cgi_receipt[".cgi.receipt.json"])
    cgi = step("cgi/download", cgi_receipt[".cgi.receipt.json"], cgi_status[".cgi.status.json"])
    merged = step("merge/annotations", vcf, bravo[".bravo.tsv"], oc_report[".opencravat.variant.tsv"],
                  oc_status[".opencravat.status.json"], cgi[".cgi.alterations.tsv"])
    rows = read_tsv(merged[".annotated.tsv"])
    # each service's columns came through the chain
    for column in ("BRAVO_AF", "OC_gnomad3__af", "CGI_ONCOGENIC_SUMMARY"):
        assert any(row[column] for row in rows), column
    assert merged[".annotated.vcf.gz.tbi"].stat().st_size > 0
    # the journal is where nextflow.config puts it: the launch directory, shared by every task
    assert list(config_state_dir(launch.dir).rglob("*")), "no journal in the configured state dir"
    # every task's work dir holds the staged links and its own outputs, nothing else of another task's
    assert (launch.dir / "work").is_dir() and launch.tasks == 8


def test_a_resubmission_in_a_new_work_directory_finds_the_job_through_the_shared_state_dir(tmp_path, emulators):
    launch = Launch(tmp_path, emulators)
    vcf = REPO / ".test" / "data" / "normal.vcf"
    first = collected(*launch.run("cgi/submit", "normal", [vcf])[:2], "GENSVC_CGI_SUBMIT")
    before = jobs(emulators)
    again = collected(*launch.run("cgi/submit", "normal", [vcf])[:2], "GENSVC_CGI_SUBMIT")  # as -resume would
    assert jobs(emulators) == before
    job_id = lambda paths: yaml.safe_load(paths[".cgi.receipt.json"].read_text())["job_id"]  # noqa: E731
    assert job_id(again) == job_id(first)


def test_a_task_that_fails_exits_with_gensvcs_code_and_leaves_no_declared_output(tmp_path, emulators):
    launch = Launch(tmp_path, emulators)
    vcf = REPO / ".test" / "data" / "tumour.vcf"
    done, outputs, work = launch.run("cgi/submit", "tumour", [vcf], args="--cancer-type 'breast cancer'")
    assert done.returncode == 2  # bad input: nothing was sent; Nextflow would fail the task here
    assert "is not a CGI cancer type code" in done.stderr
    receipt = next(path for pattern, path in outputs.items() if pattern.endswith(".cgi.receipt.json"))
    assert not receipt.exists()
    assert (work / ".exitcode").read_text() == "2"


def test_main_nf_includes_every_module_and_feeds_each_process_what_it_declares():
    main = (EXAMPLE / "main.nf").read_text()
    included = dict(re.findall(r"include \{ (\w+)\s*\} from '\./(modules/[\w/]+)'", main))
    modules = {Process(path).name: path for path in (EXAMPLE / "modules").rglob("main.nf")}
    assert set(included) == set(modules), (set(included) ^ set(modules))
    for name, where in included.items():
        assert EXAMPLE / f"{where}.nf" == modules[name]
        assert re.search(rf"^\s+{name}\(", main, re.M), f"{name} is included but never called"
    # the job services go submit -> poll -> report/download, each step fed by the one before
    for service, fetch in (("OPENCRAVAT", "REPORT"), ("CGI", "DOWNLOAD")):
        assert f"GENSVC_{service}_POLL(GENSVC_{service}_SUBMIT.out.receipt)" in main
        assert f"GENSVC_{service}_{fetch}(GENSVC_{service}_SUBMIT.out.receipt.join(GENSVC_{service}_POLL.out.status))" in main
    merge = Process(EXAMPLE / "modules/gensvc/merge/annotations/main.nf")
    joined = re.search(r"merge_inputs = samples(.*?)\n\s*GENSVC_MERGE", main, re.S).group(1)
    assert len(re.findall(r"\.join\(", joined)) == len(merge.inputs) - 1  # vcf, then one join per source
