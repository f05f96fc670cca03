"""Calls generated from each operation's schema (hypothesis), run in-process against the emulators over HTTP.

Invalid ones (a param of the wrong type or out of its pattern, enum or range, an unknown or missing
name, a secret in params, an input that is not a file, an output that cannot be written) end in
exit 2 with one line on stderr, and no emulator sees a request.

Valid ones never crash: exit 0, or a documented exit (2, 3, 4, 5) in one line for what the emulator
answers, never the internal error (1) or a traceback. Their inputs are real receipts, statuses and
manifests of jobs run before, or files that are none of these; waits, deadlines and sizes are drawn
small so that every example ends in seconds. `make test` draws a few calls per operation, `make
reliability` many.
"""

from __future__ import annotations

import itertools
from contextlib import ExitStack
from pathlib import Path

import jsonschema
import pytest
import requests
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from helpers import REPO
from tests.reliability.conftest import FULL
from gensvc import schema
from gensvc.call import Call
from gensvc.runner import execute

pytestmark = [pytest.mark.slow, pytest.mark.reliability("fuzz")]

OPERATIONS = [(service, operation) for service, operation, _ in schema.operations()]
SERVICES = ("bravo", "cgi", "opencravat", "opencga", "cavatica")
CREDENTIALS = {"GENSVC_BRAVO_TOKEN": "fuzz-bravo-token", "GENSVC_CGI_EMAIL": "fuzz@example.org",
               "GENSVC_CGI_TOKEN": "fuzz-cgi-token", "GENSVC_OPENCGA_USER": "fuzzuser",
               "GENSVC_OPENCGA_PASSWORD": "fuzzpass", "GENSVC_CAVATICA_TOKEN": "fuzz-cavatica-token"}
TOKENS = {"bravo": ["fuzz-bravo-token"], "cgi": ["fuzz-cgi-token"], "opencga": ["fuzzuser:fuzzpass"],
          "cavatica": ["fuzz-cavatica-token"], "opencravat": None}
DOCUMENTED = {0, 2, 3, 4, 5}  # README: exit codes of a call; 1 is an internal error
INVALID_EXAMPLES, VALID_EXAMPLES = (100, 20) if FULL else (25, 5)
# a valid call must end in seconds: its waits, deadlines and sizes drawn from small ranges (the schema allows days)
SMALL = {"timeout": (0.05, 3.0), "first_wait": (0.01, 0.3), "max_wait": (0.01, 0.5), "stuck_after": (0.5, 3.0),
         "density": (0.001, 10.0), "max_ratio": (1.5, 500.0), "max_bytes": (1, 10**7), "max_files": (1, 1000),
         "max_variants": (1, 2000), "start": (0, 60_000_000), "pos": (1, 60_000_000), "offset": (0, 200),
         "revision": (0, 3), "page_size": (100, 5000), "limit": (20, 1000)}  # pages of 1 make thousands of requests
# names the emulators (and .test/config.yaml) know, drawn as often as generated ones
KNOWN = {"project": ["gensvc-demo/demo-project"], "app": ["gensvc-demo/apps/vcf-score", "gensvc-demo/apps/failing-step"],
         "study": ["gensvc@demo:demo", "demo"], "cancer_type": ["BRCA", "CANCER", "LUAD"], "chrom": ["22", "chr22", "1"],
         "name": ["BRCA2", "APOB", "ENSG00000084674"], "output_id": ["annotated_vcf"], "resource": None}
KNOWN = {k: v for k, v in KNOWN.items() if v}
REGION_SPAN = 1_500_000  # a valid region spans a few of Bravo's 250 kb windows, not a chromosome
ANY_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False),
                      st.text(max_size=12), st.lists(st.integers(0, 9), max_size=3),
                      st.dictionaries(st.text(max_size=4), st.integers(0, 9), max_size=2))
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)
_example = itertools.count()


@pytest.fixture(scope="module")
def emulators():
    from gensvc.emulators.server import start_emulator

    with ExitStack() as stack:
        yield {s: stack.enter_context(start_emulator(s, tokens=TOKENS[s], time_scale=0.02, rate_limit=(100_000, 1)))
               for s in SERVICES}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Files a call may name: a real VCF, text that is nothing in particular, an empty file."""
    place = tmp_path_factory.mktemp("inputs")
    (place / "junk.txt").write_text("not a vcf, not a receipt\n")
    (place / "empty.json").write_text("")
    lines = (REPO / ".test" / "data" / "tumour.vcf").read_text().splitlines(keepends=True)
    header = [line for line in lines if line.startswith("#")]
    (place / "small.vcf").write_text("".join(header + [line for line in lines if not line.startswith("#")][:8]))
    return {"vcf": REPO / ".test" / "data" / "tumour.vcf", "junk": place / "junk.txt",
            "empty": place / "empty.json", "small_vcf": place / "small.vcf"}


@pytest.fixture
def environment(monkeypatch, tmp_path, emulators):
    """Every service at its emulator, with credentials; short retries so a valid call ends soon."""
    environment_for(monkeypatch, tmp_path, emulators)
    for emulator in emulators.values():
        requests.delete(f"{emulator.root}/_emulator/stats", timeout=5).raise_for_status()
    return tmp_path


def environment_for(monkeypatch, tmp_path, emulators) -> None:
    for name in list(__import__("os").environ):
        if name.startswith(("GENSVC_", "SB_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("GENSVC_STATE_DIR", str(tmp_path / "state"))
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    for service, emulator in emulators.items():
        prefix = f"GENSVC_{service.upper()}_"
        for key, value in (("URL", emulator.url), ("MAX_ATTEMPTS", "2"), ("DEADLINE", "5"), ("BACKOFF", "0"),
                           ("READ_TIMEOUT", "5"), ("RATE_LIMIT", "off")):
            monkeypatch.setenv(prefix + key, value)


def requests_seen(emulators) -> dict[str, int]:
    return {s: requests.get(f"{e.root}/_emulator/stats", timeout=5).json()["requests"] for s, e in emulators.items()}


def valid_value(spec: dict) -> st.SearchStrategy:
    """A value the property's schema allows (most of the time; the call is checked whole after)."""
    if "enum" in spec:
        return st.sampled_from(spec["enum"])
    alternatives = spec.get("oneOf") or spec.get("anyOf")
    if alternatives:
        return st.one_of([valid_value({**spec, **alt, "oneOf": None, "anyOf": None}) for alt in alternatives])
    kind = spec.get("type", "string")
    kind = st.sampled_from([k for k in kind if k != "null"]) if isinstance(kind, list) else st.just(kind)
    return kind.flatmap(lambda k: _valid_of_type(k, spec))


def _valid_of_type(kind: str, spec: dict) -> st.SearchStrategy:
    if kind == "string":
        if spec.get("pattern"):
            return st.from_regex(spec["pattern"], fullmatch=True).filter(lambda s: len(s) <= spec.get("maxLength", 60))
        return TEXT.filter(lambda s: spec.get("minLength", 0) <= len(s) <= spec.get("maxLength", 20))
    if kind in ("integer", "number"):
        low = spec.get("minimum", spec.get("exclusiveMinimum", 0) + (1 if "exclusiveMinimum" in spec else 0))
        high = spec.get("maximum", low + 100_000)  # bounded: a valid call must end soon (regions, waits)
        return st.integers(int(low), int(high)) if kind == "integer" else st.floats(low, high).filter(
            lambda x: x > spec.get("exclusiveMinimum", float("-inf")))
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        items = valid_value(spec.get("items", {}))
        return st.lists(items, min_size=spec.get("minItems", 0), max_size=min(spec.get("maxItems", 3), 3))
    if kind == "object":
        return st.dictionaries(st.text("abc", min_size=1, max_size=3), st.integers(0, 3), max_size=2)
    return st.none()


def call_parts(service: str, operation: str, files: dict, *, settings_too: bool,
               inputs: dict | None = None, small: bool = False) -> st.SearchStrategy:
    """{input, output, params}: every required name, some optional ones, values as the schema says.

    inputs: the files each input name may be (else any of files); small: waits, deadlines and sizes
    drawn from SMALL, and names the emulators know (a project, an app, a study) as often as not."""
    props = schema.load(service, operation)["properties"]
    own = schema.load(service, operation)["properties"]["params"]["properties"]
    settings_names = set() if settings_too else {"url", "rate_limit", "token_file", "max_attempts", "deadline",
                                                  "connect_timeout", "read_timeout", "backoff", "backoff_max"}

    def named(kind: str, value):
        spec = props[kind]
        required = spec.get("required", [])
        optional = [n for n in spec.get("properties", {}) if n not in required and n not in settings_names]
        if small and kind == "params":  # a wait left out takes its default (an hour): always drawn small
            required = [*required, *(n for n in optional if n in SMALL)]
            optional = [n for n in optional if n not in SMALL]
        some = st.lists(st.sampled_from(optional), unique=True, max_size=len(optional)) if optional else st.just([])
        return some.flatmap(
            lambda chosen: st.fixed_dictionaries({n: value(n, spec["properties"][n]) for n in [*required, *chosen]})
            if [*required, *chosen] or not spec.get("minProperties")
            else st.fixed_dictionaries({n: value(n, spec["properties"][n]) for n in optional[:1]}))

    def input_file(name, spec):
        choices = (inputs or {}).get(name) or list(files.values())
        one = st.sampled_from([str(p) for p in choices])
        return st.lists(one, min_size=1, max_size=2) if "array" in str(spec.get("type")) else one

    def output_file(name, spec):
        suffix = st.sampled_from([".tsv", ".json", ".vcf", ".vcf.gz", ".txt", ".html", ".csv", ".zip", ""])
        return suffix.map(lambda s: f"{name}{s}")

    return st.fixed_dictionaries({"input": named("input", input_file), "output": named("output", output_file),
                                  "params": named("params", lambda n, spec: param_value(n, own[n], small))})


def param_value(name: str, spec: dict, small: bool) -> st.SearchStrategy:
    """A valid value of a param; when small, one that keeps the call short or names something the emulator has."""
    if not small:
        return valid_value(spec)
    if SMALL.get(name) and spec.get("type") in ("integer", "number"):
        low, high = SMALL[name]
        low = max(low, spec.get("minimum", low))
        if spec.get("type") == "integer":
            return st.integers(int(low), int(min(high, spec.get("maximum", high))))
        return st.floats(low, high).filter(lambda x: x > spec.get("exclusiveMinimum", float("-inf")))
    if name in KNOWN and spec.get("type", "string") == "string":
        return st.one_of(st.sampled_from(KNOWN[name]), valid_value(spec))
    if name == "inputs" and spec.get("type") == "object":  # CAVATICA's app inputs: the manifest's file, as a rule would
        return st.one_of(st.just({"input_vcf": {"manifest": True}}), valid_value(spec))
    return valid_value(spec)


def is_valid(service: str, operation: str, document: dict) -> bool:
    return jsonschema.Draft202012Validator(schema.load(service, operation)).is_valid(document)


def run_call(service: str, operation: str, document: dict, place: Path, capsys) -> tuple[int, str]:
    """execute() on the call, outputs under a fresh directory of place; (exit code, stderr)."""
    outputs = place / f"call-{next(_example)}"
    outputs.mkdir(parents=True)
    output = {n: p if str(p).startswith("/") else str(outputs / p) for n, p in document["output"].items()}
    capsys.readouterr()
    code = execute(Call(service, operation, input=document["input"], output=output, params=document["params"]))
    return code, capsys.readouterr().err


@st.composite
def invalid_calls(draw, service: str, operation: str, files: dict):
    """A call made invalid by one change to an otherwise generated call."""
    document = draw(call_parts(service, operation, files, settings_too=False))
    props = schema.load(service, operation)["properties"]
    params = props["params"]["properties"]
    kinds = ["wrong param value", "unknown param", "secret param", "unknown input", "unknown output",
             "missing input", "output under a file"]
    if props["params"].get("required"):
        kinds.append("missing param")
    if props["output"].get("required"):
        kinds.append("missing output")
    kind = draw(st.sampled_from(kinds))
    if kind == "wrong param value":
        name = draw(st.sampled_from(sorted(params)))
        validator = jsonschema.Draft202012Validator(params[name])
        document["params"][name] = draw(ANY_VALUE.filter(lambda v: not validator.is_valid(v)))
    elif kind == "unknown param":
        document["params"][draw(st.from_regex(r"[a-z]{3,8}", fullmatch=True).filter(lambda n: n not in params))] = "x"
    elif kind == "secret param":
        document["params"][draw(st.sampled_from(["token", "password", "api_key"]))] = "s3cret-value"
    elif kind == "missing param":
        document["params"].pop(draw(st.sampled_from(props["params"]["required"])), None)
    elif kind == "missing output":
        document["output"].pop(draw(st.sampled_from(props["output"]["required"])), None)
    elif kind in ("unknown input", "unknown output"):
        which = kind.split()[1]
        known = props[which].get("properties", {})
        document[which][draw(st.from_regex(r"[a-z]{3,8}", fullmatch=True).filter(lambda n: n not in known))] = str(files["junk"])
    elif kind == "missing input":
        if not document["input"]:
            document["input"]["nothing"] = str(files["junk"])  # no input to lose: an unknown one
        else:
            name = draw(st.sampled_from(sorted(document["input"])))
            document["input"][name] = str(files["junk"].parent / "no-such-file.vcf")
    elif kind == "output under a file":
        if not document["output"]:
            document["output"]["nothing"] = "x.tsv"
        else:
            name = draw(st.sampled_from(sorted(document["output"])))
            document["output"][name] = str(files["junk"] / "out.tsv")  # its directory is a regular file
    return kind, document


def one_line(stderr: str) -> bool:
    lines = stderr.splitlines()
    return len(lines) == 1 and lines[0].startswith("gensvc ") and "Traceback" not in stderr


@pytest.mark.parametrize(("service", "operation"), OPERATIONS, ids=[f"{s}-{o}-invalid" for s, o in OPERATIONS])
def test_an_invalid_call_generated_from_the_schema_exits_2_in_one_line_and_sends_nothing(
        service, operation, files, environment, emulators, capsys):
    @settings(max_examples=INVALID_EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much,
                                     HealthCheck.too_slow])
    @given(invalid_calls(service, operation, files))
    def refused(case):
        kind, document = case
        if kind not in ("missing input", "output under a file"):
            assert not is_valid(service, operation, document), (kind, document)
        code, stderr = run_call(service, operation, document, environment, capsys)
        assert (code, one_line(stderr)) == (2, True), (kind, document, code, stderr)

    refused()
    assert requests_seen(emulators) == dict.fromkeys(SERVICES, 0)


# a clean chain per job service, run once before the valid calls: the receipts, statuses and manifests they may read
CHAINS = {
    "opencravat": [("submit", {"files": "vcf"}, {"receipt": "receipt.json"}, {"assembly": "hg38"}),
                   ("poll", {"receipt": "receipt"}, {"status": "status.json"}, {"first_wait": 0.05, "max_wait": 0.2})],
    "cgi": [("submit", {"mutations": "vcf"}, {"receipt": "receipt.json"}, {"cancer_type": "BRCA", "reference": "hg38"}),
            ("poll", {"receipt": "receipt"}, {"status": "status.json"}, {"first_wait": 0.05, "max_wait": 0.2})],
    "cavatica": [("upload", {"files": "vcf"}, {"manifest": "manifest.json"}, {"project": KNOWN["project"][0]}),
                 ("run", {"manifest": "manifest"}, {"receipt": "receipt.json"},
                  {"project": KNOWN["project"][0], "app": KNOWN["app"][0], "inputs": {"input_vcf": {"manifest": True}}}),
                 ("poll", {"receipt": "receipt"}, {"status": "status.json"}, {"first_wait": 0.05, "max_wait": 0.2})],
    "opencga": [("upload", {"files": "vcf"}, {"manifest": "manifest.json"}, {"study": KNOWN["study"][0]}),
                ("index", {"manifest": "manifest"}, {"receipt": "receipt.json"}, {}),
                ("poll", {"receipt": "receipt"}, {"status": "status.json"}, {"first_wait": 0.05, "max_wait": 0.2})],
}


@pytest.fixture(scope="module")
def done_jobs(emulators, files, tmp_path_factory) -> dict[str, dict[str, str]]:
    """service -> {receipt, status, manifest}: files of a job each service ran to the end."""
    place = tmp_path_factory.mktemp("jobs")
    made: dict[str, dict[str, str]] = {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        environment_for(monkeypatch, place, emulators)
        for service, steps in CHAINS.items():
            made[service] = {"vcf": str(files["small_vcf"])}
            for operation, inputs, outputs, params in steps:
                output = {name: str(place / f"{service}-{path}") for name, path in outputs.items()}
                code = execute(Call(service, operation, input={n: made[service][f] for n, f in inputs.items()},
                                    output=output, params=params))
                assert code == 0, (service, operation)
                made[service].update(output)
    return made


def inputs_of(service: str, files: dict, done_jobs: dict) -> dict[str, list]:
    """Each input name -> what a valid call may give it: the file that name means, or one that is something else."""
    others = [files["junk"], files["empty"]]
    job = done_jobs.get(service, {})
    foreign = [f[n] for s, f in done_jobs.items() if s != service for n in ("receipt", "status") if n in f]
    named = {"receipt": [job.get("receipt")] * 3 + foreign[:1], "status": [job.get("status")] * 3 + foreign[-1:],
             "manifest": [job.get("manifest")] * 3}
    return {name: [p for p in chosen if p] + others for name, chosen in named.items()} | {
        name: [files["small_vcf"]] * 3 + others for name in ("vcf", "files", "mutations", "cnas", "translocations")}


@st.composite
def valid_calls(draw, service: str, operation: str, files: dict, inputs: dict):
    """A call its schema allows, its waits and sizes small, its region a few windows wide."""
    document = draw(call_parts(service, operation, files, settings_too=False, inputs=inputs, small=True))
    params = document["params"]
    if isinstance(params.get("start"), int) and "end" in params:
        params["end"] = params["start"] + draw(st.integers(1, REGION_SPAN))
    return document


def crashed(code: int, stderr: str) -> bool:
    """An exit no user error explains: an undocumented code, the internal error, a traceback, or no line saying why."""
    last = (stderr.strip().splitlines() or [""])[-1]
    return (code not in DOCUMENTED or "Traceback" in stderr or "internal error" in stderr
            or (code != 0 and not last.startswith("gensvc ")))


# a delete or an abort ends the job the others read: those run last
VALID_ORDER = sorted(OPERATIONS, key=lambda so: so[1] in ("delete", "abort"))


@pytest.mark.reliability("fuzz")
@pytest.mark.parametrize(("service", "operation"), VALID_ORDER, ids=[f"{s}-{o}-valid" for s, o in VALID_ORDER])
def test_a_valid_call_generated_from_the_schema_never_crashes(
        service, operation, files, done_jobs, environment, emulators, capsys, record_property):
    inputs = inputs_of(service, files, done_jobs)
    seen: list[int] = []

    @settings(max_examples=VALID_EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much,
                                     HealthCheck.too_slow])
    @given(valid_calls(service, operation, files, inputs))
    def never_crashes(document):
        assume(is_valid(service, operation, document))  # the schema's anyOf/oneOf across params, e.g. an id or chrom+pos
        code, stderr = run_call(service, operation, document, environment, capsys)
        assert not crashed(code, stderr), (document, code, stderr[-3000:])
        seen.append(code)

    never_crashes()
    assert seen, "no valid call was drawn"
    record_property("exits", " ".join(f"{code}:{seen.count(code)}" for code in sorted(set(seen))))
