"""Cancer Genome Interpreter (CGI) REST API v1: submit, poll, download, delete, list.

Every request carries ``Authorization: <email> <token>``. Jobs are identified by
20 hex characters; the idempotency tag travels in the job's title. Results come
as a zip that is checked whole before anything leaves it.
"""

from __future__ import annotations

import csv
import difflib
import logging
import tempfile
from contextlib import ExitStack
from functools import lru_cache
from pathlib import Path

from gensvc import schema
from gensvc.core.answers import unexpected_shape
from gensvc.core.auth import HeaderCredential
from gensvc.core.client import ServiceClient
from gensvc.core.download import SizeLimit, ZipLimits, download, extract_members
from gensvc.core.errormap import ErrorMap, Rule, json_field
from gensvc.core.jobids import server_job_id
from gensvc.core.poll import JobState, PollPolicy, wait_for_job
from gensvc.core.textfiles import open_text
from gensvc.core.receipts import idempotency_key, key_tag, submit_job, submitted_epoch, write_json
from gensvc.errors import AuthError, GensvcError, JobFailed, RequestRejected, UsageError
from gensvc.genome_build import AUTO, choose_build
from gensvc.schema import read_receipt
from gensvc.services.spellings import cgi_alleles, input_key, variant_key  # noqa: F401  (callers import them from here too)
from gensvc.vcfinput import has_vcf_name, read_header, starts_as_vcf

log = logging.getLogger("gensvc.cgi")

REFERENCES = {"hg19": "hg19", "hg38": "hg38", "grch37": "hg19", "grch38": "hg38"}
SERVED_BUILDS = {"GRCh38": "hg38", "GRCh37": "hg19"}
INPUT_KINDS = ("mutations", "cnas", "translocations")
RESULT_MEMBERS = {"alterations": "alterations.tsv", "biomarkers": "biomarkers.tsv", "summary": "summary.txt"}


@lru_cache(maxsize=None)
def cancer_types() -> dict[str, str]:
    path = Path(__file__).parent.parent / "data" / "cgi_cancer_types.tsv"  # the emulator reads it too
    rows = (line.rstrip("\n").split("\t") for line in path.read_text().splitlines() if line.strip())
    found: dict[str, str] = {}
    for code, name in ((row[0], row[1] if len(row) > 1 else "") for row in rows):
        found[code] = f"{found[code]} / {name}" if code in found else name  # CGI's list names AG twice
    return found


def check_cancer_type(code: str) -> str:
    """The code in CGI's own spelling (codes are matched in any case), or a UsageError."""
    known = cancer_types()
    canonical = {c.upper(): c for c in known}
    if code.upper() in canonical:
        return canonical[code.upper()]
    close = difflib.get_close_matches(code.upper(), known, n=3) or [c for c, name in known.items() if code.lower() in name.lower()][:3]
    expected = schema.load("cgi", "submit")["properties"]["params"]["properties"]["cancer_type"]["x-expected"]
    suggestion = f"did you mean {', '.join(f'{c} ({known[c]})' for c in close)}?" if close else None
    raise UsageError(f"cancer_type {code!r} is not {expected}", hint=suggestion)


QUOTA = "maximum number of jobs"
ERRORS = ErrorMap("cgi", message=json_field("message"), auth_hint="check GENSVC_CGI_EMAIL and GENSVC_CGI_TOKEN", rules=(
    Rule(403, RequestRejected, says=QUOTA),  # a full account is refused with 403, but it is no credential problem
))


class CgiClient(ServiceClient):
    SERVICE = "cgi"
    ENDPOINTS = {"jobs": "", "job": "{job_id}", "results": "{job_id}?action=download"}
    ERRORS = ERRORS

    def __init__(self, step, base_url: str | None = None):
        base = (base_url or step.settings.url).rstrip("/")
        creds = step.settings.credentials
        email, token = creds.get("email"), creds.get("token")
        if not (email and token):
            raise AuthError("cgi needs an account email and token", where=base,
                            hint="set GENSVC_CGI_EMAIL and GENSVC_CGI_TOKEN (or the credentials file)")
        super().__init__(step.session, base, auth=HeaderCredential("Authorization", f"{email} {token}"))

    def submit(self, files: dict[str, str], data: dict) -> str:
        with ExitStack() as stack:
            parts = {kind: (Path(path).name, stack.enter_context(open(path, "rb"))) for kind, path in files.items()}
            try:
                job_id = self.call("POST", "jobs", files=parts, data=data)
            except RequestRejected as exc:
                if QUOTA in (exc.message or ""):
                    raise self._quota_error(exc) from None
                raise
        return server_job_id(job_id, service="cgi", where=self.base)

    def _quota_error(self, exc) -> RequestRejected:
        try:
            jobs = self.job_ids()
            count = f"{len(jobs)} jobs exist ({', '.join(jobs[:5])}{', ...' if len(jobs) > 5 else ''})"
        except GensvcError:
            count = "the account's jobs could not be counted"
        return RequestRejected(
            f"cgi refused the job: the account has reached its job quota; {count}",
            service="cgi", status=exc.status, url=exc.url, message=exc.message,
            where=self.base,
            hint="`gensvc cgi delete --job-id ID` (or the cgi/delete wrapper) frees a slot; `gensvc cgi list` shows them",
        )

    def job_ids(self) -> list[str]:
        """The account's job ids, each checked before it goes into a URL."""
        answer = self.call("GET", "jobs")
        if isinstance(answer, dict):  # one client reading saw a dict keyed by job
            answer = list(answer)
        if not isinstance(answer, list):
            raise unexpected_shape("cgi", "the list of job ids", answer, self.base)
        return [server_job_id(job_id, service="cgi", where=self.base) for job_id in answer]

    def info(self, job_id: str) -> dict:
        """A job's status and metadata; the account's email is masked, as it is a credential."""
        info = self.call("GET", "job", job_id=job_id)
        if not isinstance(info, dict) or not isinstance(info.get("status", ""), str):
            raise unexpected_shape("cgi", "a job's status and metadata", info, self.url("job", job_id=job_id))
        metadata = info.get("metadata")
        if isinstance(metadata, dict) and "user" in metadata:
            metadata["user"] = "***"
        return info

    def logs(self, job_id: str) -> list[str]:
        answer = self.call("GET", "job", job_id=job_id, params={"action": "logs"})
        logs = answer.get("logs", []) if isinstance(answer, dict) else None
        if not isinstance(logs, list):
            raise unexpected_shape("cgi", "a job's logs", answer, self.url("job", job_id=job_id))
        return [str(line) for line in logs]

    def delete(self, job_id: str) -> bool:
        """True if deleted now, False if it was already gone."""
        try:
            self.request("DELETE", "job", job_id=job_id)  # its body is undocumented: not read
            return True
        except RequestRejected as exc:
            if exc.status == 404:
                return False
            raise

    def find_job_with(self, tag: str, failed_too: bool = False) -> str | None:
        """A job whose title carries ``tag``, unless it failed (or a failed one too)."""
        for job_id in self.job_ids():
            info = self.info(job_id)
            metadata = info.get("metadata") if isinstance(info.get("metadata"), dict) else {}
            if tag in str(metadata.get("title", "")) and (failed_too or info.get("status") != "Error"):
                return job_id
        return None


# ---- inputs ---------------------------------------------------------------------


def _header(kind: str, path: str) -> tuple[bool, list[str], list[str]]:
    """(is VCF, header columns lowercased, first data row)."""
    if has_vcf_name(path) or starts_as_vcf(path):  # a file named .vcf is held to being one
        with open_text(path) as handle:
            _, header = read_header(handle, path, f"{kind} input")
            first = next((line.rstrip("\r\n") for line in handle if line.strip()), "")
            for _ in handle:  # read to the end: a damaged gzip file says so here, not at CGI
                pass
        return True, [c.lower() for c in header.lstrip("#").split("\t")], first.split("\t") if first else []
    with open_text(path) as handle:
        lines = [line.rstrip("\n") for line in handle if line.strip()]
    if not lines:
        raise UsageError(f"{kind} input {path} is empty")
    return False, [c.strip().lower() for c in lines[0].split("\t")], lines[1].split("\t") if len(lines) > 1 else []


def check_input(kind: str, path: str) -> None:
    """Refuse, before any upload, a file CGI could not read."""
    is_vcf, columns, first = _header(kind, path)
    if kind == "mutations":
        if is_vcf:
            return
        if "protein" in columns or "gdna" in columns or {"chr", "pos", "ref", "alt"} <= set(columns):
            return
        raise UsageError(f"mutations {path}: not a VCF, and its header has none of protein, gdna or chr pos ref alt",
                         hint="see https://www.cancergenomeinterpreter.org/formats")
    if kind == "cnas":
        if not {"gene", "cna"} <= set(columns):
            raise UsageError(f"cnas {path}: the header needs gene and cna columns")
        values = _column_values(path, columns.index("cna"))
        bad = sorted({v for v in values if v.lower() not in ("amp", "del")})
        if bad:
            raise UsageError(f"cnas {path}: cna values must be amp or del, not {', '.join(bad[:5])}")
        return
    if "fus" not in columns:
        raise UsageError(f"translocations {path}: the header needs a fus column")
    bad = [v for v in _column_values(path, columns.index("fus")) if len([g for g in v.split("__") if g]) != 2]
    if bad:
        raise UsageError(f"translocations {path}: fus values are GENE1__GENE2, not {', '.join(bad[:5])}")


def _column_values(path: str, index: int) -> list[str]:
    with open_text(path) as handle:
        rows = [line.rstrip("\n").split("\t") for line in handle if line.strip()][1:]
    return [row[index].strip() for row in rows if len(row) > index]


# ---- results ---------------------------------------------------------------------


def parse_alterations(path: str) -> list[dict]:
    """alterations.tsv rows, each with ``key``: the input variant it describes.

    CGI repeats the input's own columns (for a VCF ``#CHROM POS ID QUAL FILTER INFO``;
    for a table ``CHR POS`` or ``protein``/``gdna``) beside its own trimmed
    ``REF ALT``; the input's REF and ALT clash with those and are dropped. So a row
    is keyed by the input's chromosome and position and CGI's alleles: match input
    records with ``input_key``.
    """
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    for row in rows:
        row["key"] = _alteration_key(row)
    return rows


def _alteration_key(row: dict):
    lower = {k.lower(): v for k, v in row.items() if k}
    chrom = lower.get("#chrom") or lower.get("chr")
    pos = lower.get("pos")
    if chrom and pos:
        return variant_key(chrom, pos, lower.get("ref", ""), lower.get("alt", ""))
    for column in ("protein", "gdna"):
        if lower.get(column):
            return (column, lower[column])
    return ("alteration", lower.get("cgi-gene", ""), lower.get("cgi-type", ""), lower.get("input id", ""))


def parse_biomarkers(path: str) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


# ---- operations --------------------------------------------------------------------


def submit(step, *, cancer_type, title="", reference=AUTO) -> dict:
    files = {kind: step.input[kind] for kind in INPUT_KINDS if kind in step.input}
    if not files:
        raise UsageError("cgi submit needs at least one of the inputs mutations, cnas, translocations")
    cancer_type = check_cancer_type(cancer_type)
    # only mutations carry coordinates; a TSV has no header to read a build from
    vcfs = [files["mutations"]] if "mutations" in files else []
    reference = choose_build(vcfs, reference, served=SERVED_BUILDS, fallback="hg19", param="reference", service="CGI")
    genome = REFERENCES.get(str(reference).lower())
    if genome is None:
        raise UsageError(f"reference {reference!r} is not hg19, hg38, GRCh37 or GRCh38")
    for kind, path in files.items():
        check_input(kind, path)
    request = {"cancer_type": cancer_type, "title": title, "reference": genome, "inputs": sorted(files)}
    key = idempotency_key("cgi", step.url, "submit", request, files)
    client = CgiClient(step)
    data = {"cancer_type": cancer_type, "title": f"{title} {key_tag(key)}".strip(), "reference": genome}
    return submit_job(step, key, request, find_job=client.find_job_with,
                      submit=lambda: client.submit(files, data), reusable=lambda job_id: _still_there(client, job_id))


def _still_there(client: CgiClient, job_id: str) -> bool:
    try:
        return client.info(job_id).get("status") != "Error"
    except RequestRejected:
        return False


def poll(step, *, timeout=86400.0, first_wait=1.8, max_wait=60.0) -> dict:
    receipt = read_receipt(step.input["receipt"], "cgi")
    client = CgiClient(step, receipt["base_url"])
    job_id = receipt["job_id"]

    def check() -> JobState:
        info = client.info(job_id)
        status = info.get("status", "unknown")
        return JobState(status, finished=status in ("Done", "Error"), detail=info)

    state, checks = wait_for_job(check, PollPolicy(first=first_wait, cap=max_wait, timeout=timeout),
                                 what=f"cgi job {job_id}", where=client.url("job", job_id=job_id),
                                 submitted=submitted_epoch(receipt))
    if state.status != "Done":
        raise _job_failed(client, job_id, state.status)
    write_json(step.output["status"], {"service": "cgi", "job_id": job_id, "status": state.status,
                                       "checks": checks, "job": state.detail})
    return {"job_id": job_id, "checks": checks}


def _job_failed(client: CgiClient, job_id: str, status: str) -> JobFailed:
    """The job ended ``status`` (not Done): exit 4, with the tail of its logs."""
    try:
        tail = [line.strip() for line in client.logs(job_id) if line.strip()][-4:]
    except GensvcError as exc:  # the job failed whatever its logs say
        tail = [f"(logs unavailable: {exc.what})"]
    return JobFailed(f"cgi job {job_id} ended {status}: {' | '.join(tail) or '(no logs)'}",
                     where=client.url("job", job_id=job_id), hint="fix the input named in the log and submit again")


def download_results(step, *, max_files=100, max_bytes=4 << 30, max_ratio=200.0) -> dict:
    receipt = read_receipt(step.input["receipt"], "cgi")
    client = CgiClient(step, receipt["base_url"])
    job_id = receipt["job_id"]
    wanted = {member: step.output[name] for name, member in RESULT_MEMBERS.items() if name in step.output}
    with tempfile.TemporaryDirectory(prefix="gensvc-cgi-") as workdir:
        zip_path = step.output.get("zip") or str(Path(workdir) / "results.zip")  # no name from a server's string
        # the zip holds at most max_bytes once expanded: more than that sent is no result zip
        try:
            got = download(step.session, client.url("results", job_id=job_id), zip_path, check_response=ERRORS.check,
                           auth=client.auth, limit=SizeLimit(max_bytes, "the max_bytes param"))
        except RequestRejected:
            # a job that failed has no results: say so as poll does (exit 4), not as a bad call
            if _status_or_none(client, job_id) == "Error":
                raise _job_failed(client, job_id, "Error") from None
            raise
        sizes = extract_members(zip_path, wanted, ZipLimits(max_files, max_bytes, max_ratio))
    summary = _summary_versions(step.output.get("summary"))
    return {"job_id": job_id, "zip_bytes": got.size, "zip_sha256": got.sha256, "members": sizes,
            "versions": summary}


def _status_or_none(client: CgiClient, job_id: str) -> str | None:
    try:
        return client.info(job_id).get("status")
    except GensvcError:
        return None


def _summary_versions(path: str | None) -> dict:
    if not path:
        return {}
    versions = {}
    for line in Path(path).read_text(errors="replace").splitlines():
        if line.startswith("CGI version:"):
            versions["cgi"] = line.split(":", 1)[1].strip()
    return versions


def delete(step, *, job_id=None) -> dict:
    if "receipt" in step.input:
        receipt = read_receipt(step.input["receipt"], "cgi")
        job_id, base = receipt["job_id"], receipt["base_url"]
    elif job_id:
        base = None
    else:
        raise UsageError("cgi delete needs a receipt input or a job_id param")
    client = CgiClient(step, base)
    deleted = client.delete(job_id)
    write_json(step.output["deleted"], {"service": "cgi", "job_id": job_id,
                                        "result": "deleted" if deleted else "already gone"})
    return {"job_id": job_id, "deleted": deleted}


def list_jobs(step) -> dict:
    client = CgiClient(step)
    jobs = [{"id": job_id, **client.info(job_id)} for job_id in client.job_ids()]
    write_json(step.output["jobs"], {"service": "cgi", "jobs": jobs})
    return {"jobs": len(jobs)}


OPERATIONS = {"submit": submit, "poll": poll, "download": download_results, "delete": delete, "list": list_jobs}
