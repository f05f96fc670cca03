"""The apps the CAVATICA emulator offers, and what running them does.

- `gensvc-demo/apps/vcf-score`: reads a VCF (plain or gzip/BGZF) and writes it back with
  INFO `CAV_SCORE` (Number=A, Float): for each ALT a score in [0, 1) from the SHA-256 of
  `CHROM:POS:REF:ALT`, four decimals, the same for the same variant everywhere. Revision 1
  (the latest) also writes `CAV_TIER` (Number=A, String: high, medium or low; `high` from
  the `tier_threshold` input, default 0.8; medium from 0.5). Output `annotated_vcf`:
  `<name without .vcf/.vcf.gz>.cav.vcf`, plain text. A file that is not a VCF fails the
  task, its log saying why.
- `gensvc-demo/apps/failing-step`: takes a VCF and always fails in its second job, with
  an error in that job's log (a task that fails with execution details).
- `gensvc-demo/apps/vcf-split`: takes a list of VCFs (`input_vcfs`, File[]) and outputs a
  list, `chromosome_vcfs`: one `<name>.<chrom>.vcf` per input and chromosome, header kept.

An app's run happens when its task's running time is over (the emulator's clock), so what
the task reads is its inputs as they are then.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

from .cavatica_store import CavaticaStore, FileRecord, Job, StoreError, Task

DEMO_PROJECT = "gensvc-demo/apps"


@dataclass(frozen=True)
class AppInput:
    id: str
    type: str  # "File", "File[]", "float", "int", "string", "boolean"
    required: bool = True
    label: str = ""


class AppFailure(Exception):
    """A run that fails: the failing job's name, its log, and the jobs done before it."""

    def __init__(self, job: str, log: str, message: str,
                 done: tuple[tuple[str, str, str], ...] = ()):
        super().__init__(message)
        self.job, self.log, self.message, self.done = job, log, message, done


@dataclass
class AppResult:
    outputs: dict[str, tuple[str, bytes] | list[tuple[str, bytes]]]  # output id -> file(s): (name, content)
    jobs: list[tuple[str, str, str]]  # (job name, command line, log text), all DONE


@dataclass(frozen=True)
class App:
    short_name: str
    revision: int
    name: str
    description: str
    inputs: tuple[AppInput, ...]
    outputs: tuple[tuple[str, str], ...]  # (output id, CWL type)
    run: Callable[[dict[str, Any], dict[str, bytes]], AppResult] = field(compare=False)
    project: str = DEMO_PROJECT

    @property
    def id(self) -> str:
        return f"{self.project}/{self.short_name}"

    def raw(self) -> dict:
        """The app's CWL, as `GET /apps/{id}/raw` and the app's `raw` field show it."""
        return {
            "cwlVersion": "v1.0", "class": "CommandLineTool", "label": self.name,
            "doc": self.description, "baseCommand": [self.short_name],
            "inputs": [{"id": item.id, "label": item.label or item.id,
                        "type": item.type if item.required else ["null", item.type]}
                       for item in self.inputs],
            "outputs": [{"id": output, "type": ["null", kind]} for output, kind in self.outputs],
            "sbg:id": f"{self.id}/{self.revision}", "sbg:revision": self.revision,
            "sbg:project": self.project, "sbg:appVersion": ["v1.0"],
        }


# VCF reading and scoring.
def _vcf_text(data: bytes, name: str) -> str:
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)  # BGZF is concatenated gzip members
        except (OSError, EOFError, zlib.error) as error:
            raise AppFailure("read-vcf", f"ERROR: {name}: not a readable gzip file: {error}",
                             f"{name} is not a readable gzip file") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise AppFailure("read-vcf", f"ERROR: {name}: not text (not a VCF)",
                         f"{name} is not a VCF") from None


def variant_score(chrom: str, pos: str, ref: str, alt: str) -> float:
    """The deterministic CAV_SCORE of one ALT allele."""
    digest = hashlib.sha256(f"{chrom}:{pos}:{ref}:{alt}".encode()).digest()
    return round(int.from_bytes(digest[:4], "big") / 2**32, 4)


def tier(score: float, threshold: float) -> str:
    return "high" if score >= threshold else "medium" if score >= 0.5 else "low"


SCORE_HEADER = ('##INFO=<ID=CAV_SCORE,Number=A,Type=Float,Description="Deterministic '
                'variant score from the gensvc CAVATICA emulator\'s vcf-score app">')
TIER_HEADER = ('##INFO=<ID=CAV_TIER,Number=A,Type=String,Description="CAV_SCORE tier: '
               'high, medium or low">')


def _output_name(name: str) -> str:
    for suffix in (".vcf.gz", ".vcf.bgz", ".vcf"):
        if name.endswith(suffix):
            return name[: -len(suffix)] + ".cav.vcf"
    return name + ".cav.vcf"


def _score_vcf(with_tier: bool, params: dict[str, Any], files: dict[str, bytes],
               names: dict[str, str]) -> AppResult:
    name = names["input_vcf"]
    text = _vcf_text(files["input_vcf"], name)
    threshold = float(params.get("tier_threshold", 0.8))
    header, records, seen_chrom = [], [], False
    for number, line in enumerate(text.splitlines(), start=1):
        if not seen_chrom:
            if line.startswith("#CHROM"):
                header += [SCORE_HEADER] + ([TIER_HEADER] if with_tier else []) + [line]
                seen_chrom = True
            elif line.startswith("##"):
                header.append(line)
            else:
                raise AppFailure("read-vcf", f"ERROR: {name} line {number}: no #CHROM header "
                                 "line before the records (not a VCF)", f"{name} is not a VCF")
            continue
        if not line.strip():
            continue
        columns = line.split("\t")
        if len(columns) < 8:
            raise AppFailure("score-variants", f"ERROR: {name} line {number}: {len(columns)} "
                             "columns, a VCF record has at least 8", f"{name} has a bad record",
                             done=(("read-vcf", f"vcf-score read {name}", f"reading {name}\n"),))
        chrom, pos, _, ref, alts = columns[:5]
        scores = [variant_score(chrom, pos, ref, alt) for alt in alts.split(",")]
        extra = "CAV_SCORE=" + ",".join(f"{score:.4f}" for score in scores)
        if with_tier:
            extra += ";CAV_TIER=" + ",".join(tier(score, threshold) for score in scores)
        columns[7] = extra if columns[7] in ("", ".") else f"{columns[7]};{extra}"
        records.append("\t".join(columns))
    if not seen_chrom:
        raise AppFailure("read-vcf", f"ERROR: {name}: no #CHROM header line (not a VCF)",
                         f"{name} is not a VCF")
    output = "\n".join(header + records) + "\n"
    log = (f"read {len(records)} records from {name}\n"
           f"wrote {_output_name(name)} with CAV_SCORE{' and CAV_TIER' if with_tier else ''}\n")
    return AppResult(outputs={"annotated_vcf": (_output_name(name), output.encode())},
                     jobs=[("read-vcf", f"vcf-score read {name}", f"reading {name}\n"),
                           ("score-variants", f"vcf-score score --threshold {threshold} {name}", log)])


def _always_fail(params: dict[str, Any], files: dict[str, bytes], names: dict[str, str]) -> AppResult:
    name = names["input_vcf"]
    raise AppFailure("crash-step",
                     f"starting crash-step on {name}\n"
                     "ERROR: crash-step: simulated failure (this app always fails)\n"
                     "Process exited with code 1\n",
                     "crash-step failed with exit code 1",
                     done=(("prepare", f"failing-step prepare {name}", f"prepared {name}\n"),))


def _split_vcfs(params: dict[str, Any], files: dict[str, Any], names: dict[str, Any]) -> AppResult:
    """One VCF per input and chromosome, the header kept: a list output."""
    made, log = [], []
    for content, name in zip(files["input_vcfs"], names["input_vcfs"]):
        header, by_chrom = [], {}
        for line in _vcf_text(content, name).splitlines():
            if line.startswith("#"):
                header.append(line)
            elif line.strip():
                by_chrom.setdefault(line.split("\t", 1)[0], []).append(line)
        if not header or not header[-1].startswith("#CHROM"):
            raise AppFailure("split-vcf", f"ERROR: {name}: no #CHROM header line (not a VCF)",
                             f"{name} is not a VCF")
        stem = _output_name(name)[: -len(".cav.vcf")]
        for chrom, lines in by_chrom.items():
            made.append((f"{stem}.{chrom}.vcf", ("\n".join(header + lines) + "\n").encode()))
            log.append(f"{name}: {len(lines)} records on {chrom}")
    return AppResult(outputs={"chromosome_vcfs": made},
                     jobs=[("split-vcf", "vcf-split " + " ".join(names["input_vcfs"]),
                            "\n".join(log) + "\n")])


VCF_INPUT = AppInput("input_vcf", "File", label="Input VCF")
APPS: tuple[App, ...] = (
    App("vcf-score", 0, "VCF score annotator", "Adds a deterministic CAV_SCORE to each variant.",
        (VCF_INPUT,), (("annotated_vcf", "File"),),
        lambda params, files, names: _score_vcf(False, params, files, names)),
    App("vcf-score", 1, "VCF score annotator",
        "Adds a deterministic CAV_SCORE and its tier (CAV_TIER) to each variant.",
        (VCF_INPUT, AppInput("tier_threshold", "float", required=False, label="High tier from")),
        (("annotated_vcf", "File"),),
        lambda params, files, names: _score_vcf(True, params, files, names)),
    App("vcf-split", 0, "VCF splitter", "One VCF per input and chromosome (a list output).",
        (AppInput("input_vcfs", "File[]", label="Input VCFs"),), (("chromosome_vcfs", "File[]"),), _split_vcfs),
    App("failing-step", 0, "Failing step", "Always fails in its second job (for tests).",
        (VCF_INPUT,), (("annotated_vcf", "File"),), _always_fail),
)


def find_app(app_id: str) -> App:
    """`owner/project/app` (the latest revision) or `owner/project/app/revision`."""
    parts = app_id.split("/")
    if len(parts) not in (3, 4) or not all(parts):
        raise StoreError(400, 6011, "Malformed app id. Expecting `owner/project/app_name/revision`.")
    base = "/".join(parts[:3])
    revisions = [app for app in APPS if app.id == base]
    if len(parts) == 4:
        revisions = [app for app in revisions if str(app.revision) == parts[3]]
    if not revisions:
        raise StoreError(404, 6002, "Requested app/revision does not exist.")
    return max(revisions, key=lambda app: app.revision)


def latest_apps() -> list[App]:
    latest: dict[str, App] = {}
    for app in APPS:
        if app.id not in latest or app.revision > latest[app.id].revision:
            latest[app.id] = app
    return list(latest.values())


# Validation of a task's inputs (the task's `errors`, as the platform reports them).
_SCALARS = {"float": (int, float), "int": (int,), "string": (str,), "boolean": (bool,)}


def _file_problem(store: CavaticaStore, value: Any, project: str) -> str | None:
    if not isinstance(value, dict) or str(value.get("class", "")).lower() not in ("file", "directory"):
        return 'expected a file: {"class": "File", "path": "<file id>"}'
    record = store.files.get(str(value.get("path", "")))
    if record is None or record.parent is None:
        return f"file {value.get('path')!r} does not exist"
    if record.project != project:
        return f"file {record.id} is not in project {project}"
    if record.type != "file":
        return f"{record.id} is a folder, not a file"
    return None


def input_errors(store: CavaticaStore, app: App, inputs: dict[str, Any], project: str) -> list[dict]:
    """One entry per problem: missing required inputs, unknown files, wrong types."""
    errors = []
    known = {item.id: item for item in app.inputs}
    for item in app.inputs:
        value = inputs.get(item.id)
        if value is None:
            if item.required:
                errors.append({"code": 7012, "input": item.id,
                               "message": f"Missing inputs. Required input {item.id!r} is not set."})
            continue
        if item.type == "File":
            problem = _file_problem(store, value, project)
        elif item.type == "File[]":
            values = value if isinstance(value, list) else [value]
            problem = next(filter(None, (_file_problem(store, v, project) for v in values)), None)
        else:
            ok = isinstance(value, _SCALARS[item.type]) and not (
                isinstance(value, bool) and item.type != "boolean")
            problem = None if ok else f"expected a value of type {item.type}, got {value!r}"
        if problem:
            errors.append({"code": 7012, "input": item.id,
                           "message": f"Invalid input {item.id!r}: {problem}."})
    for name in inputs:
        if name not in known:
            errors.append({"code": 7012, "input": name,
                           "message": f"Input {name!r} is not an input of app {app.id}."})
    return errors


# Settling a finished run: outputs and logs become files in the project.
def _file_inputs(store: CavaticaStore, app: App, inputs: dict[str, Any]) -> tuple[dict, dict, dict]:
    params, files, names = {}, {}, {}
    for item in app.inputs:
        value = inputs.get(item.id)
        if value is None:
            continue
        if item.type == "File":
            record: FileRecord = store.files[value["path"]]
            files[item.id] = record.path.read_bytes() if record.path else b""
            names[item.id] = record.name
        elif item.type == "File[]":
            records = [store.files[v["path"]] for v in (value if isinstance(value, list) else [value])]
            files[item.id] = [r.path.read_bytes() if r.path else b"" for r in records]
            names[item.id] = [r.name for r in records]
        else:
            params[item.id] = value
    return params, files, names


def settle(store: CavaticaStore, task: Task, status: str) -> None:
    """Make what a task leaves behind once it ends: outputs and a log per job."""
    project = store.projects[task.project]
    root = store.folder(project.root_folder)
    task.settled = status
    if status == "ABORTED":
        task.execution_message = "Task was aborted by the user."
        return
    app = find_app(task.app)
    try:
        if task.fail_message:
            raise AppFailure("run-app", f"ERROR: {task.fail_message}\n", task.fail_message)
        params, files, names = _file_inputs(store, app, task.inputs)
        result = app.run(params, files, names)
    except (AppFailure, KeyError, OSError) as error:
        failure = error if isinstance(error, AppFailure) else AppFailure(
            "read-inputs", f"ERROR: an input file is missing: {error}\n", "an input file is missing")
        for name, command, log in failure.done:
            _add_job(store, task, root, name, command, log, failed=False)
        _add_job(store, task, root, failure.job, f"{app.short_name} {failure.job}", failure.log, failed=True)
        task.settled = "FAILED"
        task.execution_message = f"Job {failure.job} failed: {failure.message}"
        return
    for name, command, log in result.jobs:
        _add_job(store, task, root, name, command, log, failed=False)
    for output_id, value in result.outputs.items():
        made = [_output_file(store, task, root, name, content)
                for name, content in (value if isinstance(value, list) else [value])]
        task.outputs[output_id] = made if isinstance(value, list) else made[0]
    task.execution_message = "Task completed successfully."


def _output_file(store: CavaticaStore, task: Task, root: FileRecord, name: str,
                 content: bytes) -> dict:
    record = store.add_file_bytes(store.unique_name(root.id, name), root, content,
                                  origin_task=task.id)
    return {"class": "File", "path": record.id, "name": record.name, "basename": record.name,
            "size": record.size}


def _add_job(store: CavaticaStore, task: Task, root: FileRecord, name: str, command: str,
             log: str, failed: bool) -> None:
    log_file = store.add_file_bytes(f"{task.id}.{name}.job.err.log", root, log.encode(),
                                    origin_task=task.id, hidden=True)
    task.jobs.append(Job(name=name, command_line=command, log_file=log_file.id, failed=failed))
